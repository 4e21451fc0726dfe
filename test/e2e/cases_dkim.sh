# shellcheck shell=bash
# cases_dkim.sh -- e2e cases of the dkim module (sourced by run.sh); every case is named
# dkim_*, so `bash test/e2e/run.sh dkim_` runs them all.  (Being written, issue #6.)

dkim_run_all() {
	:
}
