# Run by ctest (a TEST_INCLUDE_FILES script, see tests/CMakeLists.txt), with SWITCHYARD,
# REDIS_SERVER, CLIENTS_DIR and SANITIZED set: adds Clients.<suite>.<target> for redis-server and
# for every RESP model the built binary lists, so the tests follow the registry without a
# reconfigure. A sanitizer build tests our C++: the peers (docs/peers.md), programs in other
# runtimes, are left to the release build there.
execute_process(COMMAND "${SWITCHYARD}" serve --list-models --format=tsv
                OUTPUT_VARIABLE listing ERROR_VARIABLE error RESULT_VARIABLE result)
set(targets redis-server)
if(result EQUAL 0)
  # Name and protocol are the first two fields; what follows may hold any text, ';' included,
  # which CMake would take for a list separator.
  string(REPLACE ";" "," listing "${listing}")
  string(REPLACE "\n" ";" lines "${listing}")
  foreach(line IN LISTS lines)
    if(line MATCHES "^([^\t]+)\tresp\t" AND (NOT SANITIZED OR line MATCHES "\tc\\+\\+$"))
      list(APPEND targets ${CMAKE_MATCH_1})
    endif()
  endforeach()
else()
  # Unbuilt or broken: a test that fails with the binary's own words, never a silent empty suite.
  add_test(Clients.ListModels "${SWITCHYARD}" serve --list-models --format=tsv)
  set_tests_properties(Clients.ListModels PROPERTIES LABELS clients)
endif()

foreach(target IN LISTS targets)
  if(target STREQUAL "redis-server")
    set(py_args --redis-server "${REDIS_SERVER}")
    set(go_args --models none --redis-server "${REDIS_SERVER}")
  else()
    set(py_args --serve "${SWITCHYARD}" --model ${target})
    set(go_args --no-reference --models ${target} --switchyard "${SWITCHYARD}")
  endif()
  add_test(Clients.RedisPy.${target} /usr/bin/python3 "${CLIENTS_DIR}/redis_py_test.py" ${py_args})
  add_test(Clients.Redigo.${target} bash "${CLIENTS_DIR}/redigo_suite.sh" ${go_args})
  # redis-cli's hints, built from our COMMAND DOCS, read off a pseudo-terminal.
  add_test(Clients.RedisCliHints.${target} /usr/bin/python3
           "${CLIENTS_DIR}/redis_cli_hints_test.py" ${py_args})
  set_tests_properties(Clients.RedisPy.${target} Clients.Redigo.${target}
                       Clients.RedisCliHints.${target} PROPERTIES LABELS clients TIMEOUT 180)
endforeach()
