/*
 * threadutil.h: what the thread suites share (pthreadtests, smptests) on
 * top of testcase.h, which it includes: a suite defines SUITE, includes
 * this instead of testcase.h, and gets
 *   xcreate(fn, arg)  pthread_create that fails the case on error;
 *   xjoin(t)          pthread_join that fails the case on error and
 *                     returns the thread's result.
 */
#ifndef FERRITE_THREADUTIL_H
#define FERRITE_THREADUTIL_H

#include "testcase.h"

#include <pthread.h>
#include <string.h>

static TC_UNUSED pthread_t xcreate(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	int e = pthread_create(&t, NULL, fn, arg);
	if (e)
		fail("pthread_create: %s", strerror(e));
	return t;
}

static TC_UNUSED void *xjoin(pthread_t t)
{
	void *r;
	int e = pthread_join(t, &r);
	if (e)
		fail("pthread_join: %s", strerror(e));
	return r;
}

#endif
