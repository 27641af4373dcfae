{
  "targets": [
    {
      "target_name": "kernel_copy",
      "sources": ["native/kernel_copy.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [["OS != 'linux'", {"type": "none", "sources": []}]]
    }
  ]
}
