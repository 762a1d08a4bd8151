/* Wire formats: umbrella header for include/mior/proto/. */
#ifndef MIOR_PROTO_H
#define MIOR_PROTO_H
#endif
