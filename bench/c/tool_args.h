/*
 * Command-line helpers shared by the C programs (ping, pong, floor).
 * Every parser returns 0 or -1 and never exits: the program decides.
 */
#ifndef SHMX_TOOL_ARGS_H
#define SHMX_TOOL_ARGS_H

#include <stdint.h>

/* Exit codes of the programs (DESIGN.md section 5 and the ping protocol). */
#define TOOL_EXIT_OK 0
#define TOOL_EXIT_MISMATCH 1 /* a wrong or missing echo, or another failure during the run */
#define TOOL_EXIT_USAGE 2
#define TOOL_EXIT_CONNECT 3  /* could not connect, or the host closed the channel */
#define TOOL_EXIT_HOST_GONE 4 /* the host died or was destroyed during the run (-SHMX_EHOSTGONE) */
#define TOOL_EXIT_EXPELLED 5  /* the host expelled this guest (-SHMX_EEXPELLED) */

/* Parse a decimal unsigned integer in [@min, @max] (no sign, no trailing junk). */
int tool_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/*
 * Parse a transport name: "shm", "uds", and with @allow_both (a host's offer)
 * "both", without it (a guest's request) "auto". Sets *@out to a bitwise or of
 * enum shmx_transport.
 */
int tool_parse_transport(const char *s, int allow_both, uint32_t *out);

#endif
