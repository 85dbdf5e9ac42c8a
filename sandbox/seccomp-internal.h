/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Shared by seccomp.c (default policy) and seccomp-oci.c (JSON profiles).
 * Include this before anything that includes "seccomp.h": our header has
 * libseccomp's name, and pulls the real one in only when asked to first.
 */

#define SB_WANT_LIBSECCOMP 1
#include <seccomp.h>

/*
 * Syscall number on the native architecture: libseccomp's table first, then
 * our own for syscalls newer than the libseccomp we were built with.
 * Returns __NR_SCMP_ERROR when the name is unknown; *ret_native_only is set
 * when the number came from our table (it is only valid for the native
 * architecture, libseccomp cannot translate it for others).
 */
int sb_seccomp__resolve(const char *name, bool *ret_native_only);

/*
 * Compile ctx (and an optional BPF prefix that runs first and falls through
 * to ctx's program) into a new sb_seccomp. kind is "default" or "profile",
 * name the profile's file name (NULL for the default). warnings (may be
 * NULL, each malloc'd) are taken over in every case.
 */
int sb_seccomp__finish(scmp_filter_ctx ctx, const struct sock_filter *prefix, size_t n_prefix,
		       size_t rules, unsigned filter_flags, const char *kind, const char *name,
		       char **warnings, size_t n_warnings, sb_seccomp **ret, sb_error *err);
