package dev.nodemesh.bpf.ffi;

import jnr.ffi.Pointer;
import jnr.ffi.annotations.In;
import jnr.ffi.annotations.Out;
import jnr.ffi.annotations.SaveError;
import jnr.ffi.types.size_t;
import jnr.ffi.types.u_int64_t;
import org.jspecify.annotations.Nullable;

/**
 * The libbpf 1.x calls nodemesh makes, bound through jnr-ffi from {@code libbpf.so.1}. In libbpf
 * 1.x a call returning a pointer returns NULL and sets errno on failure; a call returning int
 * returns a negative errno. Use {@link Bpf}, which turns both into {@link BpfException}.
 */
public interface LibBpf {
  @SaveError
  @Nullable Pointer bpf_object__open_mem(
      @In Pointer buf, @size_t long size, @Nullable Pointer opts);

  @SaveError
  int bpf_object__load(Pointer obj);

  void bpf_object__close(Pointer obj);

  @Nullable Pointer bpf_object__find_program_by_name(Pointer obj, String name);

  @Nullable Pointer bpf_object__find_map_by_name(Pointer obj, String name);

  int bpf_program__set_log_buf(Pointer prog, Pointer buf, @size_t long size);

  int bpf_program__fd(Pointer prog);

  @SaveError
  @Nullable Pointer bpf_program__attach_cgroup(Pointer prog, int cgroupFd);

  @SaveError
  @Nullable Pointer bpf_program__attach_netns(Pointer prog, int netnsFd);

  int bpf_map__set_pin_path(Pointer map, String path);

  int bpf_map__unpin(Pointer map, @Nullable String path);

  int bpf_map__fd(Pointer map);

  int bpf_map__key_size(Pointer map);

  int bpf_map__value_size(Pointer map);

  int bpf_link__pin(Pointer link, String path);

  int bpf_link__unpin(Pointer link);

  @SaveError
  @Nullable Pointer bpf_link__open(String path);

  int bpf_link__update_program(Pointer link, Pointer prog);

  int bpf_link__detach(Pointer link);

  void bpf_link__disconnect(Pointer link);

  int bpf_link__destroy(Pointer link);

  int bpf_map_update_elem(int fd, @In Pointer key, @In Pointer value, @u_int64_t long flags);

  int bpf_map_lookup_elem(int fd, @In Pointer key, @Out Pointer value);

  int bpf_map_delete_elem(int fd, @In Pointer key);

  int bpf_map_get_next_key(int fd, @In @Nullable Pointer key, @Out Pointer nextKey);

  /** Attaches a program to a map (sk_msg to a SOCKHASH); replaces what was attached there. */
  int bpf_prog_attach(int progFd, int attachableFd, int type, int flags);

  int bpf_prog_detach2(int progFd, int attachableFd, int type);

  int bpf_obj_pin(int fd, String path);

  /** An fd of the pinned object at {@code path}, or a negative errno. */
  int bpf_obj_get(String path);

  int libbpf_probe_bpf_prog_type(int progType, @Nullable Pointer opts);

  @SaveError
  @Nullable Pointer btf__parse(String path, @Nullable Pointer btfExt);

  void btf__free(Pointer btf);

  int btf__find_by_name_kind(Pointer btf, String name, int kind);

  @Nullable Pointer btf__type_by_id(Pointer btf, int id);

  @Nullable String btf__name_by_offset(Pointer btf, int offset);

  long btf__resolve_size(Pointer btf, int typeId);
}
