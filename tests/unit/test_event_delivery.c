/* test_event_delivery.c — core/engine/event_delivery.c: the signature
 * receivers check (README "Integrate with the API"), against a value
 * computed independently:
 *   printf '1733577600.{"id":"e1"}' | openssl dgst -sha256 -hmac whsec_test */
#include <check.h>
#include <string.h>

#include "event_delivery.h"
#include "testlib.h"

START_TEST(signature_is_hmac_over_timestamp_dot_body)
{
	const char *body = "{\"id\":\"e1\"}";
	char sig[EVENT_SIGNATURE_LEN];
	ck_assert_int_eq(event_sign("whsec_test", 1733577600, body, strlen(body), sig), 0);
	ck_assert_str_eq(sig,
			 "v1=041cda9ec72bc408a2afaf5839418cf3efe376cd3ce487f4953760b91b923b2d");
	/* another timestamp, another signature: a replayed body cannot be re-dated */
	char other[EVENT_SIGNATURE_LEN];
	ck_assert_int_eq(event_sign("whsec_test", 1733577601, body, strlen(body), other), 0);
	ck_assert_str_ne(sig, other);
	/* the body is signed to its last byte, NUL bytes included */
	ck_assert_int_eq(event_sign("whsec_test", 1733577600, "{\"id\":\"e1\"}\0x", 13, other), 0);
	ck_assert_str_ne(sig, other);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("event_delivery");
	TCase *tc = tcase_create("sign");
	tcase_add_test(tc, signature_is_hmac_over_timestamp_dot_body);
	suite_add_tcase(s, tc);
	return tl_run_suite(s);
}
