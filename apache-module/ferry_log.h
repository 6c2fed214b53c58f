/*
 * ferry_log.h: mod_ferry's log tag macro (httpd's APLOGNO convention).
 *
 * Every ERR/WARN/NOTICE line carries a unique tag "FERRYnnnn: ", one per call
 * site, never reused; each tag is listed in docs/errors.md. TRACE lines carry
 * no tag. Ranges: 0001-0099 configuration and mapping, 0100-0199 the data
 * path, 0200-0299 the core daemon.
 */
#ifndef FERRY_LOG_H
#define FERRY_LOG_H

/* n is the 4-digit tag number written literally: FERRY_LOGNO(0107). */
#define FERRY_LOGNO(n) "FERRY" #n ": "

#endif
