// SPDX-License-Identifier: MIT
/*
 * A DLL that uses memlink as a plug-in would: mlt_dll_open() starts a
 * daemon and connects a client to it, and DllMain closes both when the
 * DLL is unloaded or the process ends, with the loader lock held (which
 * a thread's exit needs: ml_chan_close must not wait for one). Loaded by
 * win_test's "dll" role; linked with memlink.dll (mlt-dll.dll) and with
 * libmemlink.a (mlt-dll-static.dll).
 */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>

#include "memlink.h"

__declspec(dllexport) int mlt_dll_open(const char *name);
BOOL WINAPI DllMain(HINSTANCE inst, DWORD why, void *reserved);

static ml_chan *d, *c;

int mlt_dll_open(const char *name)
{
	int err = ml_daemon_create(&d, name, NULL);

	return err ? err : ml_client_connect(&c, name, NULL);
}

BOOL WINAPI DllMain(HINSTANCE inst, DWORD why, void *reserved)
{
	(void)inst;
	(void)reserved;
	if (why == DLL_PROCESS_DETACH) {
		ml_chan_close(c);
		ml_chan_close(d);
		c = d = NULL;
	}
	return TRUE;
}
