/*
 * win32_acl.c - the Windows side of the check that no less privileged
 * principal can change the code a service loads (reload.c's file_problem
 * on POSIX looks at owners and mode bits): a file or directory is unsafe
 * when its owner, or a principal its DACL allows to write it, change its
 * permissions or take it over, is neither Administrators, SYSTEM,
 * TrustedInstaller nor the account the service runs as (the process
 * token's user). Deny entries are not weighed: an allow entry for such a
 * principal is reported even if a deny entry would win. Any thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>

#include "win32_prim.h"

/* What lets a principal change a file, or add, remove or replace a
 * directory's entries. */
#define WRITE_RIGHTS                                                                               \
    (FILE_WRITE_DATA | FILE_APPEND_DATA | FILE_DELETE_CHILD | WRITE_DAC | WRITE_OWNER |            \
     GENERIC_WRITE | GENERIC_ALL)

static bool trusted(PSID sid, PSID me)
{
    static const WELL_KNOWN_SID_TYPE ok[] = {WinLocalSystemSid, WinBuiltinAdministratorsSid};
    if (!sid || !IsValidSid(sid))
        return false;
    if (me && EqualSid(sid, me))
        return true;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (IsWellKnownSid(sid, ok[i]))
            return true;
    /* NT SERVICE\TrustedInstaller */
    char *s = NULL;
    bool ti = false;
    if (ConvertSidToStringSidA(sid, &s)) {
        ti = strcmp(s, "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464") == 0;
        LocalFree(s);
    }
    return ti;
}

/* "DOMAIN\name (S-1-...)" for a SID, UTF-8. */
static void sid_text(PSID sid, char *buf, size_t len)
{
    wchar_t name[256], dom[256];
    DWORD nn = 256, dn = 256;
    SID_NAME_USE use;
    char *str = NULL;
    ConvertSidToStringSidA(sid, &str);
    char *un = NULL, *ud = NULL;
    if (LookupAccountSidW(NULL, sid, name, &nn, dom, &dn, &use)) {
        un = lsvc_utf8(name);
        ud = lsvc_utf8(dom);
    }
    if (un)
        snprintf(buf, len, "%s%s%s (%s)", ud && *ud ? ud : "", ud && *ud ? "\\" : "", un,
                 str ? str : "?");
    else
        snprintf(buf, len, "%s", str ? str : "an unknown principal");
    free(un);
    free(ud);
    if (str)
        LocalFree(str);
}

/* The process token's user: the account the service runs as. */
static PSID token_user(void)
{
    HANDLE tok;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
        return NULL;
    DWORD need = 0;
    GetTokenInformation(tok, TokenUser, NULL, 0, &need);
    TOKEN_USER *tu = need ? malloc(need) : NULL;
    PSID sid = NULL;
    if (tu && GetTokenInformation(tok, TokenUser, tu, need, &need)) {
        DWORD n = GetLengthSid(tu->User.Sid);
        sid = malloc(n);
        if (sid && !CopySid(n, sid, tu->User.Sid)) {
            free(sid);
            sid = NULL;
        }
    }
    free(tu);
    CloseHandle(tok);
    return sid;
}

void lsvc_win32_file_problem(const char *what, const char *path, char *buf, size_t len)
{
    buf[0] = '\0';
    wchar_t *w = lsvc_wide(path);
    if (!w)
        return;
    PSECURITY_DESCRIPTOR sd = NULL;
    PACL dacl = NULL;
    PSID owner = NULL;
    DWORD rc = GetNamedSecurityInfoW(w, SE_FILE_OBJECT,
                                     OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &owner,
                                     NULL, &dacl, NULL, &sd);
    free(w);
    if (rc != ERROR_SUCCESS)
        return; /* missing or unreadable: loading it reports what is wrong */
    PSID me = token_user();
    char who[512];
    if (owner && !trusted(owner, me)) {
        sid_text(owner, who, sizeof who);
        snprintf(buf, len,
                 "%s %s is owned by %s, neither Administrators, SYSTEM nor the service's "
                 "account: its owner could change the service's code; take ownership as an "
                 "administrator",
                 what, path, who);
    } else if (!dacl) {
        snprintf(buf, len,
                 "%s %s has no access control list: anyone could change the service's code; "
                 "give it one (icacls)",
                 what, path);
    } else {
        for (DWORD i = 0; i < dacl->AceCount && !buf[0]; i++) {
            ACE_HEADER *ace;
            if (!GetAce(dacl, i, (void **)&ace) || ace->AceType != ACCESS_ALLOWED_ACE_TYPE ||
                (ace->AceFlags & INHERIT_ONLY_ACE))
                continue;
            ACCESS_ALLOWED_ACE *a = (ACCESS_ALLOWED_ACE *)ace;
            PSID sid = (PSID)&a->SidStart;
            if (!(a->Mask & WRITE_RIGHTS) || trusted(sid, me))
                continue;
            sid_text(sid, who, sizeof who);
            snprintf(buf, len,
                     "%s %s is writable by %s (access mask 0x%lx): a less privileged user could "
                     "change the service's code; remove that access (icacls)",
                     what, path, who, (unsigned long)a->Mask);
        }
    }
    free(me);
    LocalFree(sd);
}
