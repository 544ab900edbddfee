// SPDX-License-Identifier: MIT
/*
 * A channel's mode as Windows security descriptors, one per kind of
 * object (file mapping, event, mutex), in SDDL:
 *
 *   O:<user>D:P(A;;<all>;;;<user>)(A;;<g>;;;<group>)(A;;<o>;;;AU)[S:(ML;;NW;;;ME)]
 *
 * owner  the creating process's user SID, which owns the objects and may
 *        do anything with them, whatever the owner bits say (Windows lets
 *        an owner read and rewrite the DACL in any case, and a daemon
 *        replacing its own dead channel must open what is left of it)
 * group  the token's primary group, as Cygwin and the old POSIX subsystem
 *        map a file's group; for a local account that is "None", for a
 *        domain account "Domain Users": every user of the machine or of
 *        the domain, so 0660 is nearly 0666 there
 * other  Authenticated Users (S-1-5-11): every logged-on account, services'
 *        included, but not anonymous or guest logons, which "Everyone"
 *        may include
 * Each r bit grants what a peer reads with, each w bit what it writes
 * with (a client needs both: it writes its requests and rings the
 * daemon); x is ignored. The control region and the pointer mapping are
 * read-only to everyone but their owner, whatever the mode; each client's own objects (its area and
 * doorbells) get a DACL of their own, for the daemon's user and that
 * client's only (ml__win_sa_peer). The ACEs only allow, and Windows grants the
 * union of the ACEs that match a token, so a group or other bit also
 * applies to the owner. The DACL is protected (P): nothing is inherited.
 *
 * Integrity: an elevated (high) or system process labels what it creates
 * with its own level, and a medium process may not write up to it, DACL
 * or not. Such a daemon labels its objects medium instead, which any
 * process may do for a level at or below its own; a medium or low one
 * needs no label (unlabelled is medium; low gets low).
 */
#include "win.h"

#include <aclapi.h>
#include <errno.h>
#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* What each mode bit grants, by kind of object: read, write; all (owner). */
static const DWORD bit_rights[ML__WIN_OBJS][2] = {
	[ML__WIN_MAP] = { SECTION_QUERY | SECTION_MAP_READ, SECTION_MAP_WRITE },
	[ML__WIN_EVENT] = { SYNCHRONIZE, EVENT_MODIFY_STATE },
	[ML__WIN_MUTEX] = { SYNCHRONIZE, MUTEX_MODIFY_STATE },
	/* The control region: only the daemon writes it, whatever the mode. */
	[ML__WIN_CTL] = { SECTION_QUERY | SECTION_MAP_READ, 0 },
	[ML__WIN_PIPE] = { ML__WIN_PIPE_READ, ML__WIN_PIPE_WRITE },
};
static const DWORD all_rights[ML__WIN_OBJS] = {
	[ML__WIN_MAP] = SECTION_ALL_ACCESS,
	[ML__WIN_EVENT] = EVENT_ALL_ACCESS,
	[ML__WIN_MUTEX] = MUTEX_ALL_ACCESS,
	[ML__WIN_CTL] = SECTION_ALL_ACCESS,
	[ML__WIN_PIPE] = FILE_ALL_ACCESS,
};

int ml__win_err(DWORD e)
{
	switch (e) {
	case ERROR_FILE_NOT_FOUND:
	case ERROR_PATH_NOT_FOUND:
		return -ENOENT;
	case ERROR_ACCESS_DENIED:
	case ERROR_PRIVILEGE_NOT_HELD:
		return -EACCES;
	case ERROR_NOT_ENOUGH_MEMORY:
	case ERROR_OUTOFMEMORY:
	case ERROR_COMMITMENT_LIMIT:
		return -ENOMEM;
	case ERROR_ALREADY_EXISTS:
		return -EEXIST;
	case ERROR_INVALID_HANDLE: /* the name belongs to an object of another type */
		return -EPROTO;
	default:
		return -EIO;
	}
}

/* The token's information of one class, malloc'ed; NULL on failure. */
static void *token_info(HANDLE tok, TOKEN_INFORMATION_CLASS cls)
{
	DWORD len = 0;
	void *p;

	GetTokenInformation(tok, cls, NULL, 0, &len);
	if (!len || !(p = malloc(len)))
		return NULL;
	if (!GetTokenInformation(tok, cls, p, len, &len)) {
		free(p);
		return NULL;
	}
	return p;
}

/* Append the SID's string form to buf (of n wide chars). */
static bool put_sid(wchar_t *buf, size_t n, PSID sid)
{
	wchar_t *s;
	size_t at = wcslen(buf);
	int k;

	if (!ConvertSidToStringSidW(sid, &s))
		return false;
	k = swprintf(buf + at, n - at, L"%ls", s);
	LocalFree(s);
	return k > 0;
}

static void put_ace(wchar_t *buf, size_t n, DWORD rights, PSID sid, const wchar_t *alias)
{
	size_t at = wcslen(buf);

	swprintf(buf + at, n - at, L"(A;;0x%lx;;;", (unsigned long)rights);
	if (sid)
		put_sid(buf, n, sid);
	else
		wcsncat(buf, alias, n - wcslen(buf) - 1);
	wcsncat(buf, L")", n - wcslen(buf) - 1);
}

static DWORD bits_rights(enum ml__win_obj k, unsigned bits)
{
	return (bits & 4 ? bit_rights[k][0] : 0) | (bits & 2 ? bit_rights[k][1] : 0);
}

/* Does this process run above medium integrity (elevated, system)? */
static bool above_medium(HANDLE tok)
{
	TOKEN_MANDATORY_LABEL *il = token_info(tok, TokenIntegrityLevel);
	bool label = false;

	if (il && IsValidSid(il->Label.Sid) && *GetSidSubAuthorityCount(il->Label.Sid))
		label = *GetSidSubAuthority(il->Label.Sid,
					    *GetSidSubAuthorityCount(il->Label.Sid) - 1) >
			SECURITY_MANDATORY_MEDIUM_RID;
	free(il);
	return label;
}

/* An SDDL string as a SECURITY_ATTRIBUTES (its descriptor LocalAlloc'ed). */
static int sa_from(SECURITY_ATTRIBUTES *out, const wchar_t *sddl)
{
	PSECURITY_DESCRIPTOR sd;

	if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &sd,
								  NULL))
		return ml__win_err(GetLastError());
	out->nLength = sizeof(*out);
	out->lpSecurityDescriptor = sd;
	out->bInheritHandle = FALSE;
	return 0;
}

int ml__win_sa_peer(SECURITY_ATTRIBUTES *out, enum ml__win_obj k, PSID peer, DWORD rights)
{
	TOKEN_USER *user = NULL;
	HANDLE tok = NULL;
	wchar_t sddl[1024] = L"O:";
	int err = -EIO;

	memset(out, 0, sizeof(*out));
	if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
		return ml__win_err(GetLastError());
	user = token_info(tok, TokenUser);
	if (!user || !IsValidSid(peer) || !put_sid(sddl, 1024, user->User.Sid))
		goto out;
	wcscat(sddl, L"D:P");
	put_ace(sddl, 1024, all_rights[k], user->User.Sid, NULL);
	if (!EqualSid(peer, user->User.Sid))
		put_ace(sddl, 1024, rights, peer, NULL);
	if (above_medium(tok))
		wcscat(sddl, L"S:(ML;;NW;;;ME)");
	err = sa_from(out, sddl);
out:
	free(user);
	CloseHandle(tok);
	return err;
}

int ml__win_sa_new(struct ml__win_sa *out, unsigned mode)
{
	TOKEN_USER *user = NULL;
	TOKEN_PRIMARY_GROUP *group = NULL;
	HANDLE tok = NULL;
	bool label;
	int err = -EIO;

	memset(out, 0, sizeof(*out));
	if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
		return ml__win_err(GetLastError());
	user = token_info(tok, TokenUser);
	group = token_info(tok, TokenPrimaryGroup);
	label = above_medium(tok);
	if (!user || !group)
		goto out;
	for (int k = 0; k < ML__WIN_OBJS; k++) {
		wchar_t sddl[1024] = L"O:";
		DWORD g = bits_rights(k, mode >> 3 & 7), o = bits_rights(k, mode & 7);

		if (!put_sid(sddl, 1024, user->User.Sid)) {
			err = -EIO;
			goto out;
		}
		wcscat(sddl, L"D:P");
		put_ace(sddl, 1024, all_rights[k], user->User.Sid, NULL);
		if (g && !EqualSid(group->PrimaryGroup, user->User.Sid))
			put_ace(sddl, 1024, g, group->PrimaryGroup, NULL);
		if (o)
			put_ace(sddl, 1024, o, NULL, L"AU");
		if (label)
			wcscat(sddl, L"S:(ML;;NW;;;ME)");
		err = sa_from(&out->sa[k], sddl);
		if (err)
			goto out;
	}
	err = 0;
out:
	if (err)
		ml__win_sa_free(out);
	free(user);
	free(group);
	CloseHandle(tok);
	return err;
}

void ml__win_sa_free(struct ml__win_sa *sa)
{
	for (int k = 0; k < ML__WIN_OBJS; k++) {
		if (sa->sa[k].lpSecurityDescriptor)
			LocalFree(sa->sa[k].lpSecurityDescriptor);
		sa->sa[k].lpSecurityDescriptor = NULL;
	}
}

PSID ml__win_token_sid(HANDLE tok)
{
	TOKEN_USER *u = token_info(tok, TokenUser);
	PSID sid = NULL;
	DWORD n;

	if (u && IsValidSid(u->User.Sid)) {
		n = GetLengthSid(u->User.Sid);
		sid = malloc(n);
		if (sid && !CopySid(n, sid, u->User.Sid)) {
			free(sid);
			sid = NULL;
		}
	}
	free(u);
	return sid;
}

int ml__win_mine(HANDLE h)
{
	PSECURITY_DESCRIPTOR sd = NULL;
	TOKEN_USER *user = NULL;
	HANDLE tok = NULL;
	PSID owner = NULL;
	DWORD e;
	int r;

	e = GetSecurityInfo(h, SE_KERNEL_OBJECT, OWNER_SECURITY_INFORMATION, &owner, NULL, NULL,
			    NULL, &sd);
	if (e != ERROR_SUCCESS)
		return ml__win_err(e);
	r = -EIO;
	if (OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok) &&
	    (user = token_info(tok, TokenUser)))
		r = owner && EqualSid(owner, user->User.Sid) ? 1 : 0;
	free(user);
	if (tok)
		CloseHandle(tok);
	LocalFree(sd);
	return r;
}
