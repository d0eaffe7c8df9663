-- Claims of deliveries that stay cheap under a backlog (issue 14). The ordering rule (a
-- case's earlier event for the same receiver must be delivered first: `NEXT_IN_ORDER` in
-- src/store/exchange.rs and src/store/region.rs) asks, for every event a claim or an
-- inbox lease considers, whether such an event is still undelivered; these partial
-- indexes hold only undelivered events, keyed as the question is asked, so each answer
-- is one short probe however many events a case has had.
CREATE INDEX outbox_undelivered ON outbox (case_id, department, case_seq, id) WHERE state <> 'delivered';
CREATE INDEX region_outbox_undelivered ON region_outbox (order_key, seq, id) WHERE state <> 'delivered';
-- The regional claim takes pending reports oldest first: walked in this order it stops
-- after a batch, where before it sorted every pending report on each pass.
CREATE INDEX region_outbox_state_time ON region_outbox (state, created_at, id);
