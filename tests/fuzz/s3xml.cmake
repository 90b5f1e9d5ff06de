# s3xml: the objstore XML reader and every S3/STS response parser, x-amz-restore, dates, INI files.
st_fuzz_target(s3xml SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_s3xml.c DEPS st_objstore)
