-- One payment, statement for statement as `superpayment serve` sent it to PostgreSQL,
-- captured from the statement log by scripts/bench (which regenerates it on every run
-- from the binary under test; `scripts/bench --write-sql` refreshes this copy).
-- 4 statements, 1 commit(s) per payment.
-- @MERCHANT_ID@ and @KEY_HASH@ are filled in per run. Run on the T_sql copy of the bench
-- database (code_hmac = md5(id) || md5('x' || id)) with -D vmin=.. -D vmax=.. -M prepared.
\set vid random(:vmin, :vmax)
\set oid random(1, 9000000000000000000)
\set idem random(1, 9000000000000000000)
\set txn random(1, 9000000000000000000)
\set evt random(1, 9000000000000000000)
BEGIN;
SELECT "vouchers"."id", "vouchers"."code_hmac", "vouchers"."last4", "vouchers"."mode", "vouchers"."currency", "vouchers"."initial_minor", "vouchers"."balance_minor", "vouchers"."status", "vouchers"."expires_at", "vouchers"."rules", "vouchers"."created_at", "vouchers"."updated_at", "vouchers"."issuer_merchant_id", "vouchers"."first_used_at", "vouchers"."pin_hash" FROM "vouchers" WHERE "vouchers"."code_hmac" IN ((md5(:vid::text) || md5('x' || :vid::text))) ORDER BY "vouchers"."id" ASC FOR UPDATE;
WITH d(id, take, forfeit, used, position, balance_after) AS (VALUES (:vid::bigint, '100'::bigint, '0'::bigint, 'f'::boolean, '0'::integer, '7577'::bigint)),
        debit AS (
            UPDATE vouchers AS v SET balance_minor = v.balance_minor - d.take - d.forfeit, updated_at = E'2026-12-05 08\x3a06\x3a02.700118+00'::timestamptz,
                first_used_at = COALESCE(v.first_used_at, E'2026-12-05 08\x3a06\x3a02.700118+00'::timestamptz),
                status = CASE WHEN d.used THEN 'used' ELSE v.status END
            FROM d WHERE v.id = d.id AND v.balance_minor >= d.take + d.forfeit AND v.status = 'active'
            RETURNING v.id
        ),
        txn AS (
            INSERT INTO transactions (id, merchant_id, mode, order_id, status, currency, amount_minor,
                commission_minor, net_minor, refunded_minor, created_at, hold_state, authorized_minor,
                hold_expires_at)
            VALUES (('txn_' || :txn)::text, '@MERCHANT_ID@'::text, 'test'::text, (:oid)::text, 'succeeded'::text, 'EUR'::text, '100'::bigint, '3'::bigint, '97'::bigint, 0, E'2026-12-05 08\x3a06\x3a02.700118+00'::timestamptz, NULL::text, NULL::bigint, NULL::timestamptz)
        ),
        red AS (
            INSERT INTO redemptions (transaction_id, voucher_id, position, amount_minor, balance_after_minor, created_at)
            SELECT ('txn_' || :txn)::text, d.id, d.position, d.take, d.balance_after, E'2026-12-05 08\x3a06\x3a02.700118+00'::timestamptz FROM d
        ),
        jr AS (
            INSERT INTO journals (kind, transaction_id, currency, created_at)
            VALUES ('payment'::text, ('txn_' || :txn)::text, 'EUR'::text, E'2026-12-05 08\x3a06\x3a02.700118+00'::timestamptz) RETURNING id
        ),
        po AS (
            INSERT INTO postings (journal_id, account, voucher_id, amount_minor)
            SELECT jr.id, p.account, p.voucher_id, p.amount FROM jr CROSS JOIN (VALUES (E'voucher_liability\x3atest\x3aEUR'::text, :vid::bigint, '-100'::bigint), (E'merchant_payable\x3a@MERCHANT_ID@\x3atest\x3aEUR'::text, NULL::bigint, '97'::bigint), (E'platform_commission\x3atest\x3aEUR'::text, NULL::bigint, '3'::bigint)) AS p(account, voucher_id, amount)
        ),
        ev AS (
            INSERT INTO events (id, merchant_id, mode, kind, transaction_id, payload, created_at)
            VALUES (('evt_' || :evt)::text, '@MERCHANT_ID@'::text, 'test'::text, 'payment.succeeded'::text, ('txn_' || :txn)::text, E'{"created_at"\x3a"2026-12-05T08\x3a06\x3a02.700118205Z","data"\x3a{"commission"\x3a"0.03","net"\x3a"0.97","transaction"\x3a{"amount"\x3a"1.00","created_at"\x3a"2026-12-05T08\x3a06\x3a02.700118205Z","currency"\x3a"EUR","id"\x3a"txn_01a2453d1ccc767db1b574332621b62b","mode"\x3a"test","order_id"\x3a"TRACE446f24f6d8cb","status"\x3a"succeeded","vouchers"\x3a[{"amount"\x3a"1.00","last4"\x3a"DCNR","remaining_balance"\x3a"75.77"}]}},"id"\x3a"evt_01a2453d1ccc767db1b5743436d3dc90","type"\x3a"payment.succeeded"}'::jsonb, E'2026-12-05 08\x3a06\x3a02.700118+00'::timestamptz)
        ), idem AS (
                INSERT INTO idempotency_keys (merchant_id, mode, operation, key, request_hash, response_status, response_body, created_at, expires_at)
                VALUES ('@MERCHANT_ID@'::text, 'test'::text, 'payment'::text, (:idem)::text, 'b183c12d8811fae93c2e8ba22096c5033db10e75a61f708bf7ae53bb15c92146'::text, '201'::integer, E'v2\x3ab0BlWk9mNtR6rpyGNBOpge4h//G3mYeklMLvcsepDYIIQBHUdmd8H9hRK8ek+7+Cv4U9moxmfcWBYbp82QJ8juNTByArQ2CMXkMVEzmcAiEQN0W6mR0zoJkD5W2QeV0ATQ8w+RzC5IHoT738O2Mc/4HFclqOyLvsYA5CNSIzo+jnv3EnmXWQs+GEI/vQEkuoLxcqNdkr5iKO9saqu4VFazJqt1xvmU+CftCHNEvODIr2hWwTBtTtxw9EImXfGef90AR086YzDkOYSgDCTBxgWRvkrVR5kE64wLIg7+e0sUzeppsjU9KzFnifB7Uw4Hepb2x4OrrGKOLE6g0T1lMKnO9JEuXobtWWYGLZwfjJY53/wfak7I0lv0cy5ENC37RWEb6Rkg=='::text, E'2026-12-05 08\x3a06\x3a02.700118+00'::timestamptz, E'2026-12-06 08\x3a06\x3a02.700118+00'::timestamptz)
                ON CONFLICT (merchant_id, mode, operation, key) DO UPDATE SET
                    request_hash = EXCLUDED.request_hash, response_status = EXCLUDED.response_status,
                    response_body = EXCLUDED.response_body, created_at = EXCLUDED.created_at,
                    expires_at = EXCLUDED.expires_at
                WHERE idempotency_keys.expires_at <= EXCLUDED.created_at
                RETURNING 1
            ), att AS (
                INSERT INTO payment_attempts (merchant_id, mode, api_key_id, client_ref, outcome, transaction_id, created_at)
                VALUES ('@MERCHANT_ID@'::text, 'test'::text, 'key_01a2453cfc3e7502bb2dc9167a621962'::text, 'f0af7b7e5580fa3d1640f78bb8b65ba9'::text, 'succeeded', ('txn_' || :txn)::text, E'2026-12-05 08\x3a06\x3a02.700118+00'::timestamptz)
            )
        SELECT (SELECT count(*) FROM debit) AS debited, (SELECT count(*) FROM idem) AS idem_written;
COMMIT;
