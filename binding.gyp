{
  "targets": [
    {
      "target_name": "edgeftp",
      "sources": ["native/addon.c", "native/kernel_copy.c", "native/copy_now.c", "native/list_directory.c", "native/socket_options.c", "native/file_lock.c", "native/open_no_symlinks.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fstack-protector-strong", "-D_FORTIFY_SOURCE=2"],
      "conditions": [["OS != 'linux'", {"type": "none", "sources": []}]]
    }
  ]
}
