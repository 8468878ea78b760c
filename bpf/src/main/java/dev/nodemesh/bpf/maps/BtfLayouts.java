package dev.nodemesh.bpf.maps;

import dev.nodemesh.bpf.ffi.Bpf;
import dev.nodemesh.bpf.ffi.BpfException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import jnr.ffi.Pointer;
import org.jspecify.annotations.Nullable;

/**
 * Reads struct layouts from the BTF of a compiled BPF object through libbpf's btf API, the source
 * of truth the mirrors are checked against (like cilium's alignchecker).
 */
public final class BtfLayouts {
  // struct btf_type { __u32 name_off; __u32 info; __u32 size; } followed by vlen members
  // struct btf_member { __u32 name_off; __u32 type; __u32 offset /* bits */; }
  private static final int TYPE_HEADER = 12;
  private static final int MEMBER = 12;

  private BtfLayouts() {}

  public static StructLayout read(Path object, String struct) throws BpfException {
    Pointer btf = Bpf.parseBtf(object.toString());
    try {
      int id =
          Bpf.check(
              Bpf.lib().btf__find_by_name_kind(btf, struct, Bpf.BTF_KIND_STRUCT),
              "btf__find_by_name_kind",
              struct + " in " + object);
      @Nullable Pointer t = Bpf.lib().btf__type_by_id(btf, id);
      if (t == null) {
        throw new BpfException("btf__type_by_id", struct, 2);
      }
      int info = t.getInt(4);
      int vlen = info & 0xffff;
      boolean kindFlag = (info >>> 31) != 0;
      int size = t.getInt(8);
      List<StructLayout.Field> fields = new ArrayList<>();
      for (int i = 0; i < vlen; i++) {
        long m = TYPE_HEADER + (long) i * MEMBER;
        String name = Bpf.lib().btf__name_by_offset(btf, t.getInt(m));
        int type = t.getInt(m + 4);
        int bits = t.getInt(m + 8);
        if (kindFlag) {
          bits &= 0xffffff; // the upper byte is a bitfield size; mirrors have no bitfields
        }
        long fieldSize =
            Bpf.check(
                (int) Bpf.lib().btf__resolve_size(btf, type),
                "btf__resolve_size",
                struct + "." + name);
        fields.add(new StructLayout.Field(name == null ? "" : name, bits / 8, (int) fieldSize));
      }
      return new StructLayout(struct, size, fields);
    } finally {
      Bpf.lib().btf__free(btf);
    }
  }
}
