/*
 * win32_job.c - the Windows host's process tree (DESIGN §9): a Job object
 * for the host's process, made at the first service's start, with
 * JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE and no breakaway. A process created
 * by a process in a job is in that job, however it was started (uv.spawn,
 * io.popen, os.execute, a C module) and however deep: a service's children
 * and all of theirs are the job's. libuv puts each uv.spawn child in a job
 * of its own as well (one that allows breakaway); Windows 8 and later, and
 * Wine, nest that job in this one, so the child stays ours.
 *
 * The handle is never inherited and never closed: when the host exits,
 * however it exits, the system closes it and ends every process left in
 * the job. At a service's stop the engine ends the job's other processes
 * (ptree.c), when that service is the host's only one: under the service
 * control manager each service has a process of its own.
 */
#include <stdio.h>

#include "primitives.h"
#include "win32_prim.h"

#define MAX_LISTED 1024 /* processes listed at once; more: listed again */

static INIT_ONCE once = INIT_ONCE_STATIC_INIT;
static HANDLE job; /* NULL: none */

/* The job's name, for `luasvc status` (lsvc_job_count_of): Global\ for a
 * service (which may make global objects), Local\ else. */
static void job_name(wchar_t *buf, size_t len, const wchar_t *ns, DWORD pid)
{
    _snwprintf(buf, len, L"%ls\\luasvc-job-%lu", ns, (unsigned long)pid);
    buf[len - 1] = L'\0';
}

static BOOL CALLBACK make_job(PINIT_ONCE o, PVOID param, PVOID *ctx)
{
    (void)o, (void)param, (void)ctx;
    wchar_t name[64];
    job_name(name, 64, L"Global", GetCurrentProcessId());
    HANDLE j = CreateJobObjectW(NULL, name);
    if (!j) {
        job_name(name, 64, L"Local", GetCurrentProcessId());
        j = CreateJobObjectW(NULL, name);
    }
    if (!j)
        j = CreateJobObjectW(NULL, NULL);
    if (!j)
        return TRUE;
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION info = {0};
    info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    if (!SetInformationJobObject(j, JobObjectExtendedLimitInformation, &info, sizeof info) ||
        !AssignProcessToJobObject(j, GetCurrentProcess())) {
        CloseHandle(j);
        return TRUE;
    }
    job = j;
    return TRUE;
}

bool lsvc_job_open(void)
{
    InitOnceExecuteOnce(&once, make_job, NULL, NULL);
    return job != NULL;
}

/* The processes in j but pid (listed in buf, under lock); with end, each
 * is terminated. */
static unsigned others(HANDLE j, DWORD pid, bool end);

unsigned lsvc_job_others(bool end)
{
    if (!job)
        return 0;
    return others(job, GetCurrentProcessId(), end);
}

int lsvc_job_count_of(unsigned long pid)
{
    wchar_t name[64];
    job_name(name, 64, L"Global", (DWORD)pid);
    HANDLE j = OpenJobObjectW(JOB_OBJECT_QUERY, FALSE, name);
    if (!j) {
        job_name(name, 64, L"Local", (DWORD)pid);
        j = OpenJobObjectW(JOB_OBJECT_QUERY, FALSE, name);
    }
    if (!j)
        return -1;
    unsigned n = others(j, (DWORD)pid, false);
    CloseHandle(j);
    return (int)n;
}

static unsigned others(HANDLE j, DWORD self, bool end)
{
    static char buf[sizeof(JOBOBJECT_BASIC_PROCESS_ID_LIST) + MAX_LISTED * sizeof(ULONG_PTR)];
    static SRWLOCK lock = SRWLOCK_INIT; /* buf is one */
    AcquireSRWLockExclusive(&lock);
    JOBOBJECT_BASIC_PROCESS_ID_LIST *list = (JOBOBJECT_BASIC_PROCESS_ID_LIST *)buf;
    unsigned n = 0;
    /* a list too long for buf fails with ERROR_MORE_DATA, filled in part */
    if (QueryInformationJobObject(j, JobObjectBasicProcessIdList, list, sizeof buf, NULL) ||
        GetLastError() == ERROR_MORE_DATA) {
        for (DWORD i = 0; i < list->NumberOfProcessIdsInList; i++) {
            DWORD pid = (DWORD)list->ProcessIdList[i];
            if (pid == self)
                continue;
            n++;
            if (!end)
                continue;
            HANDLE h = OpenProcess(PROCESS_TERMINATE, FALSE, pid);
            if (h) {
                TerminateProcess(h, 1);
                CloseHandle(h);
            }
        }
        if (list->NumberOfAssignedProcesses > list->NumberOfProcessIdsInList)
            n += (unsigned)(list->NumberOfAssignedProcesses - list->NumberOfProcessIdsInList);
    }
    ReleaseSRWLockExclusive(&lock);
    return n;
}
