/* test_policy.h -- the built-in test policy (test_policy = yes), driven by
 * envelope addresses and X-Rmilter-Test headers; see test/e2e/TEST_POLICY.md. */
#ifndef RMILTER_TEST_POLICY_H
#define RMILTER_TEST_POLICY_H

#include "policy.h"

struct milter_session;

struct rmilter_config;

void test_policy_needs(const struct rmilter_config *conf,
    struct policy_needs *needs);
enum policy_action test_policy_run(struct milter_session *s,
    enum policy_stage stage, struct policy_verdict *v);
/* Cancels what the policy holds for the current message / the session. */
void test_policy_msg_reset(struct milter_session *s);
void test_policy_session_free(struct milter_session *s);

#endif
