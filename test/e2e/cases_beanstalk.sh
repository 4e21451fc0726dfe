# shellcheck shell=bash
# cases_beanstalk.sh -- e2e cases of the beanstalk module (sourced by run.sh); every case is named
# beanstalk_*, so `bash test/e2e/run.sh beanstalk_` runs them all.  (Being written, issue #6.)

beanstalk_run_all() {
	:
}
