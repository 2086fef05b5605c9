# SWIG's V8 runtime tells the isolate about every proxy it frees. When Node tears its isolate down,
# the last proxies are freed after the isolate stopped being current: GetCurrent() is null and the
# process crashes on exit (swig/swig#3057, SWIG 4.1). Skip the hint then.
# Usage: cmake -DFILE=bioespJAVASCRIPT_wrap.cxx -P patch_wrapper.cmake
file(READ "${FILE}" text)
set(old "#define SWIGV8_ADJUST_MEMORY(size) v8::Isolate::GetCurrent()->AdjustAmountOfExternalAllocatedMemory(size)")
set(new "#define SWIGV8_ADJUST_MEMORY(size) do { if (v8::Isolate* swig_isolate = v8::Isolate::GetCurrent()) swig_isolate->AdjustAmountOfExternalAllocatedMemory(size); } while (0)")
string(FIND "${text}" "${new}" done)
if(done EQUAL -1)
  string(FIND "${text}" "${old}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${FILE}: SWIG's SWIGV8_ADJUST_MEMORY changed; check whether swig/swig#3057 is fixed")
  endif()
  string(REPLACE "${old}" "${new}" text "${text}")
  file(WRITE "${FILE}" "${text}")
endif()
