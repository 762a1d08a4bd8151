/* Run-time resolution of the IoRing API and the plan's IsIoRingSupported: see ioring_api.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "win/error.h"
#include "win/ioring_api.h"

/* The layouts passed to the API, as the Windows SDK defines them for 64-bit Windows
 * (ioringapi.h, ntioring_x.h).  A header that disagreed would make the kernel read garbage, so
 * the build stops instead. */
_Static_assert(sizeof(void *) == 8, "the IoRing layouts below are checked for 64-bit Windows");
_Static_assert(sizeof(IORING_VERSION) == 4 && sizeof(IORING_OP_CODE) == 4 &&
                   sizeof(IORING_SQE_FLAGS) == 4 && sizeof(IORING_REF_KIND) == 4,
               "IoRing enums are 32-bit");
_Static_assert(sizeof(IORING_CQE) == 24, "IORING_CQE size");
_Static_assert(offsetof(IORING_CQE, UserData) == 0, "IORING_CQE.UserData");
_Static_assert(offsetof(IORING_CQE, ResultCode) == 8, "IORING_CQE.ResultCode");
_Static_assert(offsetof(IORING_CQE, Information) == 16, "IORING_CQE.Information");
_Static_assert(sizeof(IORING_BUFFER_INFO) == 16, "IORING_BUFFER_INFO size");
_Static_assert(offsetof(IORING_BUFFER_INFO, Address) == 0, "IORING_BUFFER_INFO.Address");
_Static_assert(offsetof(IORING_BUFFER_INFO, Length) == 8, "IORING_BUFFER_INFO.Length");
_Static_assert(sizeof(IORING_REGISTERED_BUFFER) == 8, "IORING_REGISTERED_BUFFER size");
_Static_assert(offsetof(IORING_REGISTERED_BUFFER, BufferIndex) == 0, "IORING_REGISTERED_BUFFER.BufferIndex");
_Static_assert(offsetof(IORING_REGISTERED_BUFFER, Offset) == 4, "IORING_REGISTERED_BUFFER.Offset");
_Static_assert(sizeof(IORING_HANDLE_REF) == 16, "IORING_HANDLE_REF size");
_Static_assert(offsetof(IORING_HANDLE_REF, Kind) == 0, "IORING_HANDLE_REF.Kind");
_Static_assert(offsetof(IORING_HANDLE_REF, Handle) == 8, "IORING_HANDLE_REF.Handle");
_Static_assert(sizeof(IORING_BUFFER_REF) == 16, "IORING_BUFFER_REF size");
_Static_assert(offsetof(IORING_BUFFER_REF, Kind) == 0, "IORING_BUFFER_REF.Kind");
_Static_assert(offsetof(IORING_BUFFER_REF, Buffer) == 8, "IORING_BUFFER_REF.Buffer");
_Static_assert(sizeof(IORING_CAPABILITIES) == 16, "IORING_CAPABILITIES size");
_Static_assert(offsetof(IORING_CAPABILITIES, MaxVersion) == 0, "IORING_CAPABILITIES.MaxVersion");
_Static_assert(offsetof(IORING_CAPABILITIES, MaxSubmissionQueueSize) == 4, "IORING_CAPABILITIES.MaxSubmissionQueueSize");
_Static_assert(offsetof(IORING_CAPABILITIES, MaxCompletionQueueSize) == 8, "IORING_CAPABILITIES.MaxCompletionQueueSize");
_Static_assert(offsetof(IORING_CAPABILITIES, FeatureFlags) == 12, "IORING_CAPABILITIES.FeatureFlags");
_Static_assert(sizeof(IORING_CREATE_FLAGS) == 8, "IORING_CREATE_FLAGS size");
_Static_assert(sizeof(IORING_INFO) == 20, "IORING_INFO size");
_Static_assert(offsetof(IORING_INFO, IoRingVersion) == 0, "IORING_INFO.IoRingVersion");
_Static_assert(offsetof(IORING_INFO, Flags) == 4, "IORING_INFO.Flags");
_Static_assert(offsetof(IORING_INFO, SubmissionQueueSize) == 12, "IORING_INFO.SubmissionQueueSize");
_Static_assert(offsetof(IORING_INFO, CompletionQueueSize) == 16, "IORING_INFO.CompletionQueueSize");

static mior__ioring_api api;
static int api_ok;
static char api_why[200];
static INIT_ONCE api_once = INIT_ONCE_STATIC_INIT;
/* Where the entry points come from, for the messages: "kernelbase.dll", or the test emulation. */
static char api_module[64] = "kernelbase.dll";

#ifdef MIOR_IORING_TEST_HOOK
/* Test builds only (MIOR_TEST_IORING_EMU): MIOR_TEST_IORING_DLL names a DLL that stands in for
 * kernelbase.dll's IoRing entry points -- the IoRing emulation in test/win_ioring_emu, which
 * follows Microsoft's documentation and is not Windows.  Loaded, it also lifts the build-number
 * gate, since the emulation runs on any Windows (and under Wine).  NULL when the variable is unset
 * or empty; a DLL that does not load is an error with the reason, not a silent fallback. */
static HMODULE test_module(int *failed) {
  const char *name = getenv("MIOR_TEST_IORING_DLL");
  *failed = 0;
  if (!name || !*name) return NULL;
  HMODULE m = LoadLibraryA(name);
  if (!m) {
    snprintf(api_why, sizeof api_why, "test hook: cannot load %s (Windows error %lu)", name,
             (unsigned long)GetLastError());
    *failed = 1;
    return NULL;
  }
  snprintf(api_module, sizeof api_module, "the IoRing emulation");
  return m;
}
#else
/* Release builds have no way to load anything but the system's own entry points. */
static HMODULE test_module(int *failed) {
  *failed = 0;
  return NULL;
}
#endif

/* GetVersionEx reports what the program's manifest claims, not the system: ask ntdll. */
static DWORD windows_build(void) {
  typedef LONG(WINAPI * rtl_get_version_fn)(OSVERSIONINFOW *);
  HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
  if (!ntdll) return 0;
  rtl_get_version_fn fn = (rtl_get_version_fn)(void (*)(void))GetProcAddress(ntdll, "RtlGetVersion");
  if (!fn) return 0;
  OSVERSIONINFOW v;
  memset(&v, 0, sizeof v);
  v.dwOSVersionInfoSize = sizeof v;
  if (fn(&v) != 0) return 0;
  return v.dwBuildNumber;
}

/* GetProcAddress returns FARPROC; going through a plain function pointer type keeps
 * -Wcast-function-type quiet about the (deliberate) change of signature. */
#define RESOLVE(mod, name) ((void (*)(void))GetProcAddress((mod), (name)))

/* Every entry point mior needs from kernelbase.dll, through GetProcAddress: absent ones mean
 * "unsupported", never a load failure.  0, or -1 with the reason in api_why. */
static int resolve_entry_points(HMODULE k) {
  static const char *const required[] = {
      "QueryIoRingCapabilities",  "IsIoRingOpSupported",      "CreateIoRing",
      "GetIoRingInfo",            "CloseIoRing",              "SubmitIoRing",
      "PopIoRingCompletion",      "SetIoRingCompletionEvent", "BuildIoRingReadFile",
      "BuildIoRingCancelRequest", "BuildIoRingRegisterFileHandles", "BuildIoRingRegisterBuffers",
  };
  void (*fns[sizeof required / sizeof required[0]])(void);
  const char *first_missing = NULL;
  size_t nmissing = 0;
  for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
    fns[i] = RESOLVE(k, required[i]);
    if (!fns[i] && nmissing++ == 0) first_missing = required[i];
  }
  /* Short enough for the front end's reason buffers (mior_port_stats.fallback_reason is 96). */
  if (nmissing == sizeof required / sizeof required[0]) {
    snprintf(api_why, sizeof api_why, "IoRing entry points not found in %s (build %lu; needs 22000+)",
             api_module, (unsigned long)api.build);
    return -1;
  }
  if (nmissing) {
    snprintf(api_why, sizeof api_why, "IoRing entry point %s not found in %s (build %lu)",
             first_missing, api_module, (unsigned long)api.build);
    return -1;
  }
  api.QueryIoRingCapabilities = (HRESULT(WINAPI *)(IORING_CAPABILITIES *))fns[0];
  api.IsIoRingOpSupported = (BOOL(WINAPI *)(HIORING, IORING_OP_CODE))fns[1];
  api.CreateIoRing = (HRESULT(WINAPI *)(IORING_VERSION, IORING_CREATE_FLAGS, UINT32, UINT32, HIORING *))fns[2];
  api.GetIoRingInfo = (HRESULT(WINAPI *)(HIORING, IORING_INFO *))fns[3];
  api.CloseIoRing = (HRESULT(WINAPI *)(HIORING))fns[4];
  api.SubmitIoRing = (HRESULT(WINAPI *)(HIORING, UINT32, UINT32, UINT32 *))fns[5];
  api.PopIoRingCompletion = (HRESULT(WINAPI *)(HIORING, IORING_CQE *))fns[6];
  api.SetIoRingCompletionEvent = (HRESULT(WINAPI *)(HIORING, HANDLE))fns[7];
  api.BuildIoRingReadFile = (HRESULT(WINAPI *)(HIORING, IORING_HANDLE_REF, IORING_BUFFER_REF, UINT32,
                                               UINT64, UINT_PTR, IORING_SQE_FLAGS))fns[8];
  api.BuildIoRingCancelRequest = (HRESULT(WINAPI *)(HIORING, IORING_HANDLE_REF, UINT_PTR, UINT_PTR))fns[9];
  api.BuildIoRingRegisterFileHandles = (HRESULT(WINAPI *)(HIORING, UINT32, HANDLE const[], UINT_PTR))fns[10];
  api.BuildIoRingRegisterBuffers =
      (HRESULT(WINAPI *)(HIORING, UINT32, IORING_BUFFER_INFO const[], UINT_PTR))fns[11];
  /* Version 3 (22H2) additions: their absence only means sends go through Winsock. */
  api.BuildIoRingWriteFile =
      (HRESULT(WINAPI *)(HIORING, IORING_HANDLE_REF, IORING_BUFFER_REF, UINT32, UINT64,
                         mior__file_write_flags, UINT_PTR, IORING_SQE_FLAGS))RESOLVE(k, "BuildIoRingWriteFile");
  api.BuildIoRingFlushFile = (HRESULT(WINAPI *)(HIORING, IORING_HANDLE_REF, mior__file_flush_mode, UINT_PTR,
                                                IORING_SQE_FLAGS))RESOLVE(k, "BuildIoRingFlushFile");

  return 0;
}

/* The build, the capabilities and the version the rings are created at; whether WRITE works.
 * 0, or -1 with the reason in api_why. */
static int check_capabilities(const char *need, int emulated) {
  /* The entry points exist from build 22000 on; a smaller build number with them present would
   * be a compatibility shim lying about one or the other, so trust neither (except the test
   * emulation, which is such a shim on purpose). */
  if (!emulated && api.build != 0 && api.build < 22000) {
    snprintf(api_why, sizeof api_why, "%s: IoRing needs build 22000 (Windows 11) or later", need);
    return -1;
  }
  memset(&api.caps, 0, sizeof api.caps);
  HRESULT hr = api.QueryIoRingCapabilities(&api.caps);
  if (FAILED(hr)) {
    snprintf(api_why, sizeof api_why, "QueryIoRingCapabilities failed (HRESULT 0x%08lx)", (unsigned long)hr);
    return -1;
  }
  /* Rings are created at the newest version both sides know: a newer system may change what
   * an older version promises only when asked for the newer one. */
  UINT32 max = (UINT32)api.caps.MaxVersion;
  if (max >= (UINT32)MIOR_IORING_VERSION_4) api.version = MIOR_IORING_VERSION_4;
  else if (max >= (UINT32)MIOR_IORING_VERSION_3) api.version = MIOR_IORING_VERSION_3;
  else if (max >= (UINT32)MIOR_IORING_VERSION_2) api.version = MIOR_IORING_VERSION_2;
  else if (max >= (UINT32)MIOR_IORING_VERSION_1) api.version = MIOR_IORING_VERSION_1;
  else {
    snprintf(api_why, sizeof api_why, "QueryIoRingCapabilities reports no IoRing version (%u)", max);
    return -1;
  }
  if (api.caps.MaxSubmissionQueueSize == 0 || api.caps.MaxCompletionQueueSize == 0) {
    snprintf(api_why, sizeof api_why, "QueryIoRingCapabilities reports empty queue limits");
    return -1;
  }
  /* WRITE: the entry point, a version that defines it, and the ring's own answer, asked on a
   * small ring made for the question. */
  if (api.BuildIoRingWriteFile && (UINT32)api.version >= (UINT32)MIOR_IORING_VERSION_3) {
    IORING_CREATE_FLAGS flags;
    memset(&flags, 0, sizeof flags);
    HIORING ring = NULL;
    if (SUCCEEDED(api.CreateIoRing(api.version, flags, 1, 2, &ring)) && ring) {
      api.has_write = mior__ioring_op_supported(&api, ring, MIOR_IORING_OP_WRITE);
      api.CloseIoRing(ring);
    }
  }
  return 0;
}

static BOOL CALLBACK probe(PINIT_ONCE once, PVOID param, PVOID *ctx) {
  (void)once;
  (void)param;
  (void)ctx;
  api.build = windows_build();
  char need[40];
  snprintf(need, sizeof need, "Windows build %lu", (unsigned long)api.build);

  int hook_failed;
  HMODULE k = test_module(&hook_failed);
  if (hook_failed) return TRUE;
  int emulated = k != NULL;
  if (!k) k = GetModuleHandleW(L"kernelbase.dll");
  if (!k) k = LoadLibraryExW(L"kernelbase.dll", NULL, LOAD_LIBRARY_SEARCH_SYSTEM32);
  if (!k) {
    snprintf(api_why, sizeof api_why, "kernelbase.dll not found (%s)", need);
    return TRUE;
  }
  if (resolve_entry_points(k) < 0 || check_capabilities(need, emulated) < 0) return TRUE;
  api_ok = 1;
  return TRUE;
}

const mior__ioring_api *mior__ioring_api_get(char *why, size_t len) {
  InitOnceExecuteOnce(&api_once, probe, NULL, NULL);
  if (api_ok) return &api;
  if (why && len) snprintf(why, len, "%s", api_why);
  return NULL;
}

int mior__ioring_op_supported(const mior__ioring_api *a, HIORING ring, IORING_OP_CODE op) {
  /* Documented as returning BOOL (TRUE = supported) and, on the same page, as an HRESULT (S_OK =
   * supported, which is FALSE).  READ exists in every version, so its answer is "supported" in
   * whichever convention the system follows. */
  BOOL yes = a->IsIoRingOpSupported(ring, MIOR_IORING_OP_READ);
  BOOL ans = a->IsIoRingOpSupported(ring, op);
  if (op == MIOR_IORING_OP_READ) return 1;
  return ans == yes;
}
