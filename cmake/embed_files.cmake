# cmake -DOUT=file.c -DFILES="a;b" -P embed_files.cmake: writes each file as
# `const unsigned char bioesp_studio_<name>[]` (NUL-terminated) and `_size`, so the studio's page
# is part of the program.
set(text "/* Generated from examples/cli/studio by cmake/embed_files.cmake. */\n#include <stddef.h>\n")
foreach(f IN LISTS FILES)
  get_filename_component(name ${f} NAME)
  string(MAKE_C_IDENTIFIER ${name} id)
  file(READ ${f} hex HEX)
  string(LENGTH "${hex}" n)
  math(EXPR size "${n} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(APPEND text "const unsigned char bioesp_studio_${id}[] = {${bytes}0};\n")
  string(APPEND text "const size_t bioesp_studio_${id}_size = ${size};\n")
endforeach()
file(WRITE ${OUT}.tmp "${text}")
file(RENAME ${OUT}.tmp ${OUT})
