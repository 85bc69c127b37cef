// The single translation unit that compiles toml++'s implementation.
#define TOML_IMPLEMENTATION 1
#include <toml++/toml.h>
