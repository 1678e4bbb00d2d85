/* Clocks and sleeping: monotonic and CPU-time clocks, usleep and nanosleep
   (which wasi-libc implements with poll_oneoff clock subscriptions). */
#include <stdio.h>
#include <time.h>
#include <unistd.h>
int main(void) {
  struct timespec a, b; clock_gettime(CLOCK_MONOTONIC, &a);
  usleep(50000);
  struct timespec req = {0, 30000000}; nanosleep(&req, 0);
  clock_gettime(CLOCK_MONOTONIC, &b);
  long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
  printf("slept %s\n", ms >= 80 && ms < 1000 ? "ok" : "wrong");
  struct timespec p; printf("cpu clock %s\n", clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &p) == 0 ? "ok" : "wrong");
  return 0;
}
