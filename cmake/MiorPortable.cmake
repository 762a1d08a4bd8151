# mior_linux_only(<source> <out-var>): set <out-var> to TRUE if <source> can only build on Linux.
#
# A test, example or tool source is Linux-only when
#   - its name starts with test_linux_, test_transport, test_netns or test_uring, or
#   - it includes a header that exists only on Linux (or only in a POSIX socket API): netns.h,
#     liburing.h, <linux/...>, <netinet/...>, <arpa/...>, <net/...>, <netpacket/...>, numa*,
#     <sched.h>, <poll.h>, <netdb.h>, <ifaddrs.h>, or <sys/{socket,mman,epoll,uio,ioctl,wait,
#     resource,syscall,prctl,eventfd,un,random}.h>.
# Everything else is portable and is also built (and run under Wine) in the Windows cross build.
# The header check is what keeps the Windows build green when a new Linux-only file appears; the
# name rule lets a file say so even when its includes look portable.
function(mior_linux_only src out)
  get_filename_component(name ${src} NAME)
  if(name MATCHES "^test_(linux_|transport|netns|uring)")
    set(${out} TRUE PARENT_SCOPE)
    return()
  endif()
  set(sys "socket|mman|epoll|uio|ioctl|wait|resource|syscall|prctl|eventfd|un|random")
  set(hdr "liburing\\.h|netns\\.h|linux/|netinet/|arpa/|net/|netpacket/|numa|sched\\.h|poll\\.h")
  file(STRINGS ${src} hits REGEX
    "^[ \t]*#[ \t]*include[ \t]*[<\"](${hdr}|netdb\\.h|ifaddrs\\.h|sys/(${sys})\\.h)")
  if(hits)
    set(${out} TRUE PARENT_SCOPE)
  else()
    set(${out} FALSE PARENT_SCOPE)
  endif()
endfunction()

# mior_windows_only(<source> <out-var>): set <out-var> to TRUE if <source> can only build on
# Windows: its name starts with test_win_ (the Windows backends' tests, run under Wine in the
# cross build).  The Linux build leaves such files out.
function(mior_windows_only src out)
  get_filename_component(name ${src} NAME)
  if(name MATCHES "^test_win_")
    set(${out} TRUE PARENT_SCOPE)
  else()
    set(${out} FALSE PARENT_SCOPE)
  endif()
endfunction()
