//go:build tools

// Pins a module that is not built: gen2brain/malgo carries miniaudio.h, one of the headers that
// llama.cpp vendors and the ollama module zip leaves out (see group.sh). The import keeps it in
// go.mod and go.sum through `go mod tidy`; the build tag keeps it out of every build.
package tools

import _ "github.com/gen2brain/malgo"
