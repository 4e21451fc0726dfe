# shellcheck shell=bash
# cases_spf.sh -- e2e cases of the spf module (sourced by run.sh); every case is named
# spf_*, so `bash test/e2e/run.sh spf_` runs them all.  (Being written, issue #6.)

spf_run_all() {
	:
}
