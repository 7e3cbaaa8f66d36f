// The project's only C: the part of hiredis that the Redis module uses, as it exists in both
// hiredis 0.14 (Debian 12's libhiredis-dev) and hiredis 1.x. hiredis encodes commands and parses
// replies; it never touches a socket here, SwiftNIO owns those.
#ifndef RESUMABLE_STREAM_CHIREDIS_SHIM_H
#define RESUMABLE_STREAM_CHIREDIS_SHIM_H

#include <hiredis/hiredis.h>

// hiredis 1.1 widened redisFormatCommandArgv's result from int to long long; Swift sees one type.
static inline long long chiredis_format_command_argv(char **target, int argc, const char **argv,
                                                     const size_t *argvlen) {
    return redisFormatCommandArgv(target, argc, argv, argvlen);
}

// errstr is a fixed-size char array, which Swift imports as a tuple; hand it over as a C string.
static inline const char *chiredis_reader_error(const redisReader *reader) {
    return reader->errstr;
}

#endif
