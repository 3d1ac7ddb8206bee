# Go programs of the build (the go peer, the Go switch-cost program), built offline with Debian's
# golang-go: the standard library alone, no module fetched (GOPROXY=off), the caches in the build
# directory. GO is empty where Go is not installed.
find_program(GO go)

# The environment every go command of the build runs in (through `cmake -E env`), in `out`.
function(switchyard_go_environment out)
  set(${out} GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local
             GOCACHE=${CMAKE_CURRENT_BINARY_DIR}/go-cache
             GOPATH=${CMAKE_CURRENT_BINARY_DIR}/go-path PARENT_SCOPE)
endfunction()

# Builds the Go package in `source_dir` into `output` as target `target`, again whenever one of
# its sources or its go.mod changes.
function(switchyard_go_program target output source_dir description)
  switchyard_go_environment(environment)
  file(GLOB sources CONFIGURE_DEPENDS ${source_dir}/*.go)
  list(FILTER sources EXCLUDE REGEX "_test\\.go$")
  add_custom_command(
    OUTPUT ${output}
    COMMAND ${CMAKE_COMMAND} -E env ${environment} ${GO} build -o ${output} .
    WORKING_DIRECTORY ${source_dir}
    DEPENDS ${sources} ${source_dir}/go.mod
    COMMENT "Building ${description} with ${GO}")
  add_custom_target(${target} ALL DEPENDS ${output})
endfunction()
