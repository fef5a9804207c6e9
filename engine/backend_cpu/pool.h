/* The cpu table's pool entries (backend_cpu/pool.c). */
#ifndef SG_CPU_POOL_H
#define SG_CPU_POOL_H

/* Which implementation the cpu table ran for the last max or average pooling
 * (forward or backward) on this thread: "kernel" (f32 max pooling), "dnnl"
 * (f32 average pooling through oneDNN), "loops" (the reference loops) or
 * "none". Unpooling, other devices and the reference table (sg.config.reference)
 * note nothing. */

#endif
