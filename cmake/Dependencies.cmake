# Finds soldr's dependencies, all from Debian packages, and names the package
# to install when one is missing.
find_package(PkgConfig)

function(soldr_require_pkg var module debpkg)
  if(PKG_CONFIG_FOUND)
    pkg_check_modules(${var} IMPORTED_TARGET ${module})
  endif()
  if(NOT ${var}_FOUND)
    message(FATAL_ERROR "soldr needs ${module}: install the Debian package '${debpkg}' "
                        "(apt-get install ${debpkg} pkg-config)")
  endif()
endfunction()

soldr_require_pkg(SQLITE3 sqlite3 libsqlite3-dev)
soldr_require_pkg(LIBUV libuv libuv1-dev)
soldr_require_pkg(CJSON libcjson libcjson-dev)
soldr_require_pkg(CURL libcurl libcurl4-openssl-dev)

# mbedtls 2.28 (Debian 12) ships no pkg-config file: find it by hand.
find_path(MBEDTLS_INCLUDE_DIR mbedtls/ssl.h)
find_library(MBEDTLS_LIB mbedtls)
find_library(MBEDX509_LIB mbedx509)
find_library(MBEDCRYPTO_LIB mbedcrypto)
if(NOT MBEDTLS_INCLUDE_DIR OR NOT MBEDTLS_LIB OR NOT MBEDX509_LIB OR NOT MBEDCRYPTO_LIB)
  message(FATAL_ERROR "soldr needs mbedtls: install the Debian package 'libmbedtls-dev'")
endif()
add_library(soldr_mbedcrypto INTERFACE)
target_include_directories(soldr_mbedcrypto INTERFACE ${MBEDTLS_INCLUDE_DIR})
target_link_libraries(soldr_mbedcrypto INTERFACE ${MBEDCRYPTO_LIB})
add_library(soldr_mbedtls INTERFACE)
target_link_libraries(soldr_mbedtls INTERFACE ${MBEDTLS_LIB} ${MBEDX509_LIB} soldr_mbedcrypto)

# llhttp: Debian's node-llhttp ships the C sources; they are compiled into the build.
set(LLHTTP_SRC_DIR /usr/share/llhttp CACHE PATH "llhttp C sources (node-llhttp)")
set(LLHTTP_INCLUDE_DIR /usr/share/include/llhttp CACHE PATH "llhttp header (node-llhttp)")
if(NOT EXISTS ${LLHTTP_SRC_DIR}/llhttp.c OR NOT EXISTS ${LLHTTP_INCLUDE_DIR}/llhttp.h)
  message(FATAL_ERROR "soldr needs llhttp's C sources: install the Debian package 'node-llhttp'")
endif()
add_library(soldr_llhttp STATIC ${LLHTTP_SRC_DIR}/llhttp.c ${LLHTTP_SRC_DIR}/api.c
                                ${LLHTTP_SRC_DIR}/http.c)
target_include_directories(soldr_llhttp SYSTEM PUBLIC ${LLHTTP_INCLUDE_DIR})
set_target_properties(soldr_llhttp PROPERTIES C_STANDARD 99 C_EXTENSIONS ON)

find_package(Threads REQUIRED)
