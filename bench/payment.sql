-- One payment, statement for statement as `superpayment serve` sent it to PostgreSQL,
-- captured from the statement log by scripts/bench (which regenerates it on every run
-- from the binary under test; `scripts/bench --write-sql` refreshes this copy).
-- 7 statements, 4 commit(s) per payment.
-- @MERCHANT_ID@ and @KEY_HASH@ are filled in per run. Run on the T_sql copy of the bench
-- database (code_hmac = md5(id) || md5('x' || id)) with -D vmin=.. -D vmax=.. -M prepared.
\set vid random(:vmin, :vmax)
\set oid random(1, 9000000000000000000)
\set idem random(1, 9000000000000000000)
\set txn random(1, 9000000000000000000)
\set evt random(1, 9000000000000000000)
SELECT "api_keys"."id" AS "A_id", "api_keys"."merchant_id" AS "A_merchant_id", "api_keys"."kind" AS "A_kind", "api_keys"."mode" AS "A_mode", "api_keys"."key_hash" AS "A_key_hash", "api_keys"."prefix" AS "A_prefix", "api_keys"."last4" AS "A_last4", "api_keys"."created_at" AS "A_created_at", "api_keys"."expires_at" AS "A_expires_at", "api_keys"."revoked_at" AS "A_revoked_at", "merchants"."id" AS "B_id", "merchants"."name" AS "B_name", "merchants"."commission_bps" AS "B_commission_bps", "merchants"."status" AS "B_status", "merchants"."created_at" AS "B_created_at" FROM "api_keys" LEFT JOIN "merchants" ON "api_keys"."merchant_id" = "merchants"."id" WHERE "api_keys"."key_hash" = '@KEY_HASH@' LIMIT '1';
SELECT "checkout_settings"."merchant_id", "checkout_settings"."mode", "checkout_settings"."require_signature", "checkout_settings"."allowed_origins", "checkout_settings"."signing_generation", "checkout_settings"."updated_at" FROM "checkout_settings" WHERE "checkout_settings"."merchant_id" = '@MERCHANT_ID@' AND "checkout_settings"."mode" = 'test' LIMIT '1';
SELECT "idempotency_keys"."id", "idempotency_keys"."merchant_id", "idempotency_keys"."mode", "idempotency_keys"."key", "idempotency_keys"."request_hash", "idempotency_keys"."response_status", "idempotency_keys"."response_body", "idempotency_keys"."created_at", "idempotency_keys"."expires_at" FROM "idempotency_keys" WHERE "idempotency_keys"."merchant_id" = '@MERCHANT_ID@' AND "idempotency_keys"."mode" = 'test' AND "idempotency_keys"."key" = (:idem) LIMIT '1';
BEGIN;
SELECT "vouchers"."id", "vouchers"."code_hmac", "vouchers"."last4", "vouchers"."mode", "vouchers"."currency", "vouchers"."initial_minor", "vouchers"."balance_minor", "vouchers"."status", "vouchers"."expires_at", "vouchers"."rules", "vouchers"."created_at", "vouchers"."updated_at" FROM "vouchers" WHERE "vouchers"."code_hmac" IN ((md5(:vid::text) || md5('x' || :vid::text))) ORDER BY "vouchers"."id" ASC FOR UPDATE;
WITH d(id, take, used, position, balance_after) AS (VALUES (:vid::bigint, '100'::bigint, 'f'::boolean, '0'::integer, '7677'::bigint)),
        debit AS (
            UPDATE vouchers AS v SET balance_minor = v.balance_minor - d.take, updated_at = E'2026-11-22 04\x3a59\x3a24.823933+00'::timestamptz,
                status = CASE WHEN d.used THEN 'used' ELSE v.status END
            FROM d WHERE v.id = d.id AND v.balance_minor >= d.take AND v.status = 'active'
            RETURNING v.id
        ),
        txn AS (
            INSERT INTO transactions (id, merchant_id, mode, order_id, status, currency, amount_minor,
                commission_minor, net_minor, refunded_minor, created_at)
            VALUES (('txn_' || :txn)::text, '@MERCHANT_ID@'::text, 'test'::text, (:oid)::text, 'succeeded'::text, 'EUR'::text, '100'::bigint, '3'::bigint, '97'::bigint, 0, E'2026-11-22 04\x3a59\x3a24.823933+00'::timestamptz)
        ),
        red AS (
            INSERT INTO redemptions (transaction_id, voucher_id, position, amount_minor, balance_after_minor, created_at)
            SELECT ('txn_' || :txn)::text, d.id, d.position, d.take, d.balance_after, E'2026-11-22 04\x3a59\x3a24.823933+00'::timestamptz FROM d
        ),
        jr AS (
            INSERT INTO journals (kind, transaction_id, currency, created_at)
            VALUES ('payment', ('txn_' || :txn)::text, 'EUR'::text, E'2026-11-22 04\x3a59\x3a24.823933+00'::timestamptz) RETURNING id
        ),
        po AS (
            INSERT INTO postings (journal_id, account, voucher_id, amount_minor)
            SELECT jr.id, p.account, p.voucher_id, p.amount FROM jr CROSS JOIN (VALUES ('voucher_liability'::text, :vid::bigint, '-100'::bigint), (E'merchant_payable\x3a@MERCHANT_ID@\x3atest'::text, NULL::bigint, '97'::bigint), (E'platform_commission\x3atest'::text, NULL::bigint, '3'::bigint)) AS p(account, voucher_id, amount)
        ),
        ev AS (
            INSERT INTO events (id, merchant_id, mode, kind, transaction_id, payload, created_at)
            VALUES (('evt_' || :evt)::text, '@MERCHANT_ID@'::text, 'test'::text, 'payment.succeeded'::text, ('txn_' || :txn)::text, E'{"id"\x3a "evt_01a2019f931876c39708ca09d0e04239", "data"\x3a {"net"\x3a "0.97", "commission"\x3a "0.03", "transaction"\x3a {"id"\x3a "txn_01a2019f931876c39708ca08440beed1", "mode"\x3a "test", "amount"\x3a "1.00", "status"\x3a "succeeded", "currency"\x3a "EUR", "order_id"\x3a "TRACE77ce22dd6f44", "vouchers"\x3a [{"last4"\x3a "TD2D", "amount"\x3a "1.00", "remaining_balance"\x3a "76.77"}], "created_at"\x3a "2026-11-22T04\x3a59\x3a24.823933176Z"}}, "type"\x3a "payment.succeeded", "created_at"\x3a "2026-11-22T04\x3a59\x3a24.823933176Z"}'::jsonb, E'2026-11-22 04\x3a59\x3a24.823933+00'::timestamptz)
        ), idem AS (
                INSERT INTO idempotency_keys (merchant_id, mode, key, request_hash, response_status, response_body, created_at, expires_at)
                VALUES ('@MERCHANT_ID@'::text, 'test'::text, (:idem)::text, '4bf21f7d4cffab2eecf9eddc4efcde72c9ef5551d4c240bd1c4390b71bce5a3f'::text, '201'::integer, E'{"id"\x3a"txn_01a2019f931876c39708ca08440beed1","status"\x3a"succeeded","order_id"\x3a"TRACE77ce22dd6f44","amount"\x3a"1.00","currency"\x3a"EUR","mode"\x3a"test","vouchers"\x3a[{"last4"\x3a"TD2D","amount"\x3a"1.00","remaining_balance"\x3a"76.77"}],"created_at"\x3a"2026-11-22T04\x3a59\x3a24.823933176Z"}'::text, E'2026-11-22 04\x3a59\x3a24.823933+00'::timestamptz, E'2026-11-23 04\x3a59\x3a24.823933+00'::timestamptz)
                ON CONFLICT (merchant_id, mode, key) DO UPDATE SET
                    request_hash = EXCLUDED.request_hash, response_status = EXCLUDED.response_status,
                    response_body = EXCLUDED.response_body, created_at = EXCLUDED.created_at,
                    expires_at = EXCLUDED.expires_at
                WHERE idempotency_keys.expires_at <= EXCLUDED.created_at
                RETURNING 1
            )
        SELECT (SELECT count(*) FROM debit) AS debited, (SELECT count(*) FROM idem) AS idem_written;
COMMIT;
