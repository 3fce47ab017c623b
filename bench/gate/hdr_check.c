/*
 * hdr_check: record the values on stdin (one per line) in a tool_hdr
 * histogram and print the percentiles, max and mean that test_gate.py
 * compares with HdrHistogram's own (HdrCheck.java) on the same values.
 */
#include <stdio.h>

#include "tool_hdr.h"

int main(void) {
    tool_hdr_t h;
    if (tool_hdr_init(&h, 60000000000LL) != 0) return 1;
    long long v;
    while (scanf("%lld", &v) == 1) tool_hdr_record(&h, v);
    static const double ps[] = {0, 10, 50, 90, 99, 99.9, 99.99, 100};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        printf("p%g %lld\n", ps[i], (long long)tool_hdr_percentile(&h, ps[i]));
    printf("max %lld\nmean %.3f\n", (long long)tool_hdr_max(&h), tool_hdr_mean(&h));
    tool_hdr_free(&h);
    return 0;
}
