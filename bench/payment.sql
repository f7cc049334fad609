-- One payment, statement for statement as `superpayment serve` sent it to PostgreSQL,
-- captured from the statement log by scripts/bench (which regenerates it on every run
-- from the binary under test; `scripts/bench --write-sql` refreshes this copy).
-- 6 statements, 2 commit(s) per payment.
-- @MERCHANT_ID@ and @KEY_HASH@ are filled in per run. Run on the T_sql copy of the bench
-- database (code_hmac = md5(id) || md5('x' || id)) with -D vmin=.. -D vmax=.. -M prepared.
\set vid random(:vmin, :vmax)
\set oid random(1, 9000000000000000000)
\set idem random(1, 9000000000000000000)
\set txn random(1, 9000000000000000000)
\set evt random(1, 9000000000000000000)
SELECT "checkout_settings"."merchant_id", "checkout_settings"."mode", "checkout_settings"."require_signature", "checkout_settings"."allowed_origins", "checkout_settings"."signing_generation", "checkout_settings"."updated_at" FROM "checkout_settings" WHERE "checkout_settings"."merchant_id" = '@MERCHANT_ID@' AND "checkout_settings"."mode" = 'test' LIMIT '1';
BEGIN;
SELECT "idempotency_keys"."id", "idempotency_keys"."merchant_id", "idempotency_keys"."mode", "idempotency_keys"."key", "idempotency_keys"."request_hash", "idempotency_keys"."response_status", "idempotency_keys"."response_body", "idempotency_keys"."created_at", "idempotency_keys"."expires_at" FROM "idempotency_keys" WHERE "idempotency_keys"."merchant_id" = '@MERCHANT_ID@' AND "idempotency_keys"."mode" = 'test' AND "idempotency_keys"."key" = (:idem) LIMIT '1';
SELECT "vouchers"."id", "vouchers"."code_hmac", "vouchers"."last4", "vouchers"."mode", "vouchers"."currency", "vouchers"."initial_minor", "vouchers"."balance_minor", "vouchers"."status", "vouchers"."expires_at", "vouchers"."rules", "vouchers"."created_at", "vouchers"."updated_at" FROM "vouchers" WHERE "vouchers"."code_hmac" IN ((md5(:vid::text) || md5('x' || :vid::text))) ORDER BY "vouchers"."id" ASC FOR UPDATE;
WITH d(id, take, used, position, balance_after) AS (VALUES (:vid::bigint, '100'::bigint, 'f'::boolean, '0'::integer, '7577'::bigint)),
        debit AS (
            UPDATE vouchers AS v SET balance_minor = v.balance_minor - d.take, updated_at = E'2026-11-22 05\x3a32\x3a37.306629+00'::timestamptz,
                status = CASE WHEN d.used THEN 'used' ELSE v.status END
            FROM d WHERE v.id = d.id AND v.balance_minor >= d.take AND v.status = 'active'
            RETURNING v.id
        ),
        txn AS (
            INSERT INTO transactions (id, merchant_id, mode, order_id, status, currency, amount_minor,
                commission_minor, net_minor, refunded_minor, created_at)
            VALUES (('txn_' || :txn)::text, '@MERCHANT_ID@'::text, 'test'::text, (:oid)::text, 'succeeded'::text, 'EUR'::text, '100'::bigint, '3'::bigint, '97'::bigint, 0, E'2026-11-22 05\x3a32\x3a37.306629+00'::timestamptz)
        ),
        red AS (
            INSERT INTO redemptions (transaction_id, voucher_id, position, amount_minor, balance_after_minor, created_at)
            SELECT ('txn_' || :txn)::text, d.id, d.position, d.take, d.balance_after, E'2026-11-22 05\x3a32\x3a37.306629+00'::timestamptz FROM d
        ),
        jr AS (
            INSERT INTO journals (kind, transaction_id, currency, created_at)
            VALUES ('payment', ('txn_' || :txn)::text, 'EUR'::text, E'2026-11-22 05\x3a32\x3a37.306629+00'::timestamptz) RETURNING id
        ),
        po AS (
            INSERT INTO postings (journal_id, account, voucher_id, amount_minor)
            SELECT jr.id, p.account, p.voucher_id, p.amount FROM jr CROSS JOIN (VALUES ('voucher_liability'::text, :vid::bigint, '-100'::bigint), (E'merchant_payable\x3a@MERCHANT_ID@\x3atest'::text, NULL::bigint, '97'::bigint), (E'platform_commission\x3atest'::text, NULL::bigint, '3'::bigint)) AS p(account, voucher_id, amount)
        ),
        ev AS (
            INSERT INTO events (id, merchant_id, mode, kind, transaction_id, payload, created_at)
            VALUES (('evt_' || :evt)::text, '@MERCHANT_ID@'::text, 'test'::text, 'payment.succeeded'::text, ('txn_' || :txn)::text, E'{"id"\x3a "evt_01a201bdfa3a74be82c93bd35b56ec27", "data"\x3a {"net"\x3a "0.97", "commission"\x3a "0.03", "transaction"\x3a {"id"\x3a "txn_01a201bdfa3a74be82c93bd2bce1260f", "mode"\x3a "test", "amount"\x3a "1.00", "status"\x3a "succeeded", "currency"\x3a "EUR", "order_id"\x3a "TRACEa999f62fcf4d", "vouchers"\x3a [{"last4"\x3a "2F55", "amount"\x3a "1.00", "remaining_balance"\x3a "75.77"}], "created_at"\x3a "2026-11-22T05\x3a32\x3a37.306629873Z"}}, "type"\x3a "payment.succeeded", "created_at"\x3a "2026-11-22T05\x3a32\x3a37.306629873Z"}'::jsonb, E'2026-11-22 05\x3a32\x3a37.306629+00'::timestamptz)
        ), idem AS (
                INSERT INTO idempotency_keys (merchant_id, mode, key, request_hash, response_status, response_body, created_at, expires_at)
                VALUES ('@MERCHANT_ID@'::text, 'test'::text, (:idem)::text, 'b48ceb6b65e7589bda5a618cbf0ed16c20e7f3b27cd0ce792925c60c2c4f2b24'::text, '201'::integer, E'{"id"\x3a"txn_01a201bdfa3a74be82c93bd2bce1260f","status"\x3a"succeeded","order_id"\x3a"TRACEa999f62fcf4d","amount"\x3a"1.00","currency"\x3a"EUR","mode"\x3a"test","vouchers"\x3a[{"last4"\x3a"2F55","amount"\x3a"1.00","remaining_balance"\x3a"75.77"}],"created_at"\x3a"2026-11-22T05\x3a32\x3a37.306629873Z"}'::text, E'2026-11-22 05\x3a32\x3a37.306629+00'::timestamptz, E'2026-11-23 05\x3a32\x3a37.306629+00'::timestamptz)
                ON CONFLICT (merchant_id, mode, key) DO UPDATE SET
                    request_hash = EXCLUDED.request_hash, response_status = EXCLUDED.response_status,
                    response_body = EXCLUDED.response_body, created_at = EXCLUDED.created_at,
                    expires_at = EXCLUDED.expires_at
                WHERE idempotency_keys.expires_at <= EXCLUDED.created_at
                RETURNING 1
            )
        SELECT (SELECT count(*) FROM debit) AS debited, (SELECT count(*) FROM idem) AS idem_written;
COMMIT;
