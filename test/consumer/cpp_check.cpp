// The public headers must compile as C++ (extern "C", no C-only constructs) and link from C++.
#include <mior/mior.h>

#include <cstdio>

int main() {
  mior_pool_options opts;
  mior_pool_options_init(&opts);
  mior_pool_region region = {};
  (void)mior_pool_region_index(&region, nullptr);
  std::printf("C++ check OK: mior %s, default buf_size %u\n", mior_version(),
              static_cast<unsigned>(opts.buf_size));
  return 0;
}
