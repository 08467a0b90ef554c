/* The process_* metrics of the Prometheus Go client, read from /proc at
 * scrape time (same names, types and meaning, so stock dashboards work). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/file_read.h"
#include "metrics/metrics_text.h"

typedef struct proc_stat {
  double utime_ticks, stime_ticks, start_ticks;
  double vsize_bytes, rss_pages;
} proc_stat;

/* The head of a /proc file; -1 when it cannot be read or is empty. */
static int read_file(const char *path, char *buf, size_t len) {
  size_t n = 0;
  return file_read_head(path, "proc file", buf, len, &n, NULL, 0) == 0 && n > 0 ? 0 : -1;
}

/* /proc/self/stat: the command name is in parentheses and may hold spaces,
 * so fields are counted from the last ')'. Field 3 (state) follows it. */
static int read_stat(proc_stat *out) {
  char buf[2048];
  if (read_file("/proc/self/stat", buf, sizeof buf) != 0) return -1;
  char *p = strrchr(buf, ')');
  if (!p) return -1;
  p++;
  double field[64] = {0};
  int idx = 3;
  while (idx < 64) {
    while (*p == ' ') p++;
    if (*p == '\0' || *p == '\n') break;
    char *end;
    field[idx++] = strtod(p, &end); /* the state letter reads as 0 */
    if (end == p)
      while (*end && *end != ' ' && *end != '\n') end++;
    p = end;
  }
  if (idx <= 24) return -1;
  out->utime_ticks = field[14];
  out->stime_ticks = field[15];
  out->start_ticks = field[22];
  out->vsize_bytes = field[23];
  out->rss_pages = field[24];
  return 0;
}

static int read_boot_time(double *out) {
  char buf[16384];
  if (read_file("/proc/stat", buf, sizeof buf) != 0) return -1;
  const char *p = strstr(buf, "\nbtime ");
  if (!p) return -1;
  char *end;
  double v = strtod(p + 7, &end);
  if (end == p + 7) return -1;
  *out = v;
  return 0;
}

static int count_open_fds(double *out) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  double n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  *out = n;
  return 0;
}

void mtext_process_metrics(mtext *t) {
  long ticks = sysconf(_SC_CLK_TCK);
  long page = sysconf(_SC_PAGESIZE);
  proc_stat st;
  bool have_stat = ticks > 0 && page > 0 && read_stat(&st) == 0;
  if (have_stat) {
    mtext_family(t, "process_cpu_seconds_total", "counter",
                 "Total user and system CPU time spent in seconds.");
    mtext_sample_f64(t, "process_cpu_seconds_total", NULL, 0,
                     (st.utime_ticks + st.stime_ticks) / (double)ticks);
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    mtext_family(t, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    mtext_sample_f64(t, "process_max_fds", NULL, 0,
                     rl.rlim_cur == RLIM_INFINITY ? -1.0 : (double)rl.rlim_cur);
  }
  double fds;
  if (count_open_fds(&fds) == 0) {
    mtext_family(t, "process_open_fds", "gauge", "Number of open file descriptors.");
    mtext_sample_f64(t, "process_open_fds", NULL, 0, fds);
  }
  if (have_stat) {
    mtext_family(t, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    mtext_sample_f64(t, "process_resident_memory_bytes", NULL, 0, st.rss_pages * (double)page);
  }
  double btime;
  if (have_stat && read_boot_time(&btime) == 0) {
    mtext_family(t, "process_start_time_seconds", "gauge",
                 "Start time of the process since unix epoch in seconds.");
    mtext_sample_f64(t, "process_start_time_seconds", NULL, 0,
                     btime + st.start_ticks / (double)ticks);
  }
  if (have_stat) {
    mtext_family(t, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    mtext_sample_f64(t, "process_virtual_memory_bytes", NULL, 0, st.vsize_bytes);
  }
}
