# cmake --install: the binary (cmd/soldr), the systemd units, an example
# EnvironmentFile and the README. `cpack -G DEB` (or TGZ) packs the same.
#
#   bin/soldr
#   lib/systemd/system/soldr.service, soldr.socket, soldr-mgmt.socket
#   share/doc/soldr/README.md, soldr.env.example
#
# The units in systemd/ name /usr/local (the default prefix); the installed
# copies name the actual prefix.
set(SOLDR_ENV_EXAMPLE ${PROJECT_BINARY_DIR}/soldr.env.example)
add_custom_command(
  OUTPUT ${SOLDR_ENV_EXAMPLE}
  COMMAND ${CMAKE_COMMAND} -DSOLDR=$<TARGET_FILE:soldr> -DOUT=${SOLDR_ENV_EXAMPLE}
          -P ${PROJECT_SOURCE_DIR}/cmake/env_example.cmake
  DEPENDS soldr ${PROJECT_SOURCE_DIR}/cmake/env_example.cmake
  COMMENT "Writing soldr.env.example")
add_custom_target(soldr_env_example ALL DEPENDS ${SOLDR_ENV_EXAMPLE})

set(SOLDR_UNITS soldr.service soldr.socket soldr-mgmt.socket)
install(CODE "
  foreach(unit ${SOLDR_UNITS})
    file(READ \"${PROJECT_SOURCE_DIR}/systemd/\${unit}\" text)
    string(REPLACE \"/usr/local/\" \"\${CMAKE_INSTALL_PREFIX}/\" text \"\${text}\")
    file(WRITE \"${PROJECT_BINARY_DIR}/systemd/\${unit}\" \"\${text}\")
  endforeach()
")
foreach(unit ${SOLDR_UNITS})
  install(FILES ${PROJECT_BINARY_DIR}/systemd/${unit} DESTINATION lib/systemd/system)
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${SOLDR_ENV_EXAMPLE} DESTINATION share/doc/soldr)

set(CPACK_PACKAGE_NAME soldr)
set(CPACK_PACKAGE_VENDOR soldr)
set(CPACK_PACKAGE_CONTACT "soldr maintainers <root@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "webhook relay: stores every webhook durably, then forwards it")
set(CPACK_GENERATOR TGZ)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
include(CPack)
