/* One SWIG interface for Python, Java (Processing), Node and C# (Godot .NET), over the C++ layer
 * in bioesp.hpp. Failures become each host's exception with bioesp_last_error()'s message;
 * pixels come back as the host's byte type; Progress and Preview are subclassed in the host
 * (directors; Node, which SWIG gives no directors, polls async jobs and a PreviewQueue instead). */
%module(directors="1") bioesp

%{
#include "bioesp.hpp"
%}

%include <std_string.i>

/* Failures: bioesp_host::Error → the host's exception, with the message. An exception raised in
 * a host's callback is rethrown as itself (Python, Java) or reported with its type and message
 * (C#, csharp/csharp.i). */
#if defined(SWIGPYTHON)
%{
/* A Python exception raised in a callback, carried across C — and from a job's worker
 * thread — to the caller, where it is raised again as itself. */
struct PythonCallbackError : std::exception {
  struct Fetched {
    PyObject *type = nullptr, *value = nullptr, *trace = nullptr;
    ~Fetched() {
      if (!type && !value && !trace) return;
      SWIG_PYTHON_THREAD_BEGIN_BLOCK;
      Py_XDECREF(type);
      Py_XDECREF(value);
      Py_XDECREF(trace);
      SWIG_PYTHON_THREAD_END_BLOCK;
    }
  };
  std::shared_ptr<Fetched> error = std::make_shared<Fetched>();
  PythonCallbackError() { PyErr_Fetch(&error->type, &error->value, &error->trace); }  /* GIL held */
  const char* what() const noexcept override { return "exception in a Python callback"; }
  /* Raises it again, keeping its own references: a job's later take() raises it too. */
  void restore() const {  /* GIL held */
    Py_XINCREF(error->type);
    Py_XINCREF(error->value);
    Py_XINCREF(error->trace);
    PyErr_Restore(error->type, error->value, error->trace);
  }
};
%}
%exception {
  try {
    $action
  } catch (const PythonCallbackError& e) {
    e.restore();
    SWIG_fail;
  } catch (const bioesp_host::Error& e) {
    PyObject* err = e.status() == BIOESP_ERR_NOT_FOUND || e.status() == BIOESP_ERR_IO ? PyExc_OSError
                    : e.status() == BIOESP_ERR_INVALID_ARGUMENT ? PyExc_ValueError : PyExc_RuntimeError;
    PyErr_SetString(err, e.what());
    SWIG_fail;
  } catch (const std::exception& e) {
    SWIG_exception_fail(SWIG_RuntimeError, e.what());
  }
}
%feature("director:except") {
  if ($error != NULL) throw PythonCallbackError();
}
#elif defined(SWIGJAVA)
%{
/* A Java exception thrown in a callback, held (a global reference to the throwable
 * itself) across C — and from a job's worker thread — and thrown again in the caller. */
struct JavaCallbackError : std::exception {
  std::shared_ptr<_jobject> throwable;
  JavaCallbackError(JNIEnv* env, jthrowable t) {
    JavaVM* vm = nullptr;
    env->GetJavaVM(&vm);
    throwable.reset(env->NewGlobalRef(t), [vm](jobject ref) {
      JNIEnv* e = nullptr;
      if (vm->GetEnv(reinterpret_cast<void**>(&e), JNI_VERSION_1_6) == JNI_OK) {
        e->DeleteGlobalRef(ref);
      } else if (vm->AttachCurrentThread(reinterpret_cast<void**>(&e), nullptr) == JNI_OK) {
        e->DeleteGlobalRef(ref);
        vm->DetachCurrentThread();
      }
    });
  }
  const char* what() const noexcept override { return "exception in a Java callback"; }
};
%}
%feature("director:except") %{
  jthrowable $error = jenv->ExceptionOccurred();
  if ($error) {
    jenv->ExceptionClear();
    throw JavaCallbackError(jenv, $error);
  }
%}
%exception {
  try {
    $action
  } catch (const JavaCallbackError& e) {
    jenv->Throw(static_cast<jthrowable>(e.throwable.get()));
    return $null;
  } catch (const bioesp_host::Error& e) {
    jclass cls = jenv->FindClass("bioesp/BioespException");
    if (cls) jenv->ThrowNew(cls, e.what());
    return $null;
  } catch (const std::exception& e) {
    SWIG_JavaThrowException(jenv, SWIG_JavaRuntimeException, e.what());
    return $null;
  }
}
#elif defined(SWIGCSHARP)
%exception {
  try {
    $action
  } catch (const std::exception& e) {
    SWIG_CSharpSetPendingException(SWIG_CSharpApplicationException, e.what());
    return $null;
  }
}
#else
%include <exception.i>
%exception {
  try {
    $action
  } catch (const std::exception& e) {
    SWIG_exception(SWIG_RuntimeError, e.what());
  }
}
#endif

/* Pixels as the host's bytes. */
#if defined(SWIGPYTHON)
%typemap(out) bioesp_host::Bytes {
  $result = PyBytes_FromStringAndSize($1.data.data(), (Py_ssize_t)$1.data.size());
}
#elif defined(SWIGJAVA)
%typemap(jni) bioesp_host::Bytes "jbyteArray"
%typemap(jtype) bioesp_host::Bytes "byte[]"
%typemap(jstype) bioesp_host::Bytes "byte[]"
%typemap(javaout) bioesp_host::Bytes { return $jnicall; }
%typemap(out) bioesp_host::Bytes {
  $result = jenv->NewByteArray((jsize)$1.data.size());
  if ($result) jenv->SetByteArrayRegion($result, 0, (jsize)$1.data.size(), (const jbyte*)$1.data.data());
}
#elif defined(SWIGCSHARP)
/* C#: the bytes cross as a length-prefixed native buffer copied into a byte[]. */
%typemap(ctype) bioesp_host::Bytes "void*"
%typemap(imtype) bioesp_host::Bytes "global::System.IntPtr"
%typemap(cstype) bioesp_host::Bytes "byte[]"
%typemap(out) bioesp_host::Bytes %{
  {
    size_t n = $1.data.size();
    unsigned char* buf = (unsigned char*)malloc(sizeof(uint64_t) + n);
    if (buf) {
      uint64_t n64 = n;
      memcpy(buf, &n64, sizeof n64);
      memcpy(buf + sizeof n64, $1.data.data(), n);
    }
    $result = buf;
  }
%}
%typemap(csout, excode=SWIGEXCODE) bioesp_host::Bytes {
    global::System.IntPtr p = $imcall;$excode
    long n = global::System.Runtime.InteropServices.Marshal.ReadInt64(p);
    byte[] bytes = new byte[n];
    global::System.Runtime.InteropServices.Marshal.Copy(global::System.IntPtr.Add(p, 8), bytes, 0, (int)n);
    $imclassname.bioesp_free_bytes(p);
    return bytes;
  }
%pragma(csharp) imclasscode=%{
  [global::System.Runtime.InteropServices.DllImport("$dllimport", EntryPoint="bioesp_host_free_bytes")]
  public static extern void bioesp_free_bytes(global::System.IntPtr p);
%}
%{
extern "C" SWIGEXPORT void SWIGSTDCALL bioesp_host_free_bytes(void* p) { free(p); }
%}
#elif defined(SWIGJAVASCRIPT)
%typemap(out) bioesp_host::Bytes {
  $result = node::Buffer::Copy(v8::Isolate::GetCurrent(), $1.data.data(), $1.data.size()).ToLocalChecked();
}
%{
#include <node_buffer.h>
%}
#endif

#if defined(SWIGPYTHON) || defined(SWIGJAVA) || defined(SWIGCSHARP)
%feature("director") bioesp_host::Progress;
%feature("director") bioesp_host::Preview;
%feature("director") bioesp_host::TrainProgress;
/* Polling every preview is for hosts without directors. */
%ignore bioesp_host::PreviewQueue;
#endif

/* Long calls release Python's GIL (swig -threads); the callbacks' upcalls take it back. */
%newobject bioesp_host::Model::generate_async;
%ignore bioesp_host::check;
%ignore bioesp_host::Error;
%ignore bioesp_host::Bytes;

%include <std_vector.i>
%template(StringVector) std::vector<std::string>;

#if defined(SWIGPYTHON) || defined(SWIGJAVASCRIPT)
/* These hosts pass settings as text (python/python.i, node/index.js): no typed overloads reach
 * SWIG's dispatcher, which would hide the library's message behind "wrong type". */
%ignore bioesp_host::Options::set(const std::string&, bool);
%ignore bioesp_host::Options::set(const std::string&, long long);
%ignore bioesp_host::Options::set(const std::string&, double);
%ignore bioesp_host::Options::add(const std::string&, long long);
#endif

#if defined(SWIGJAVA) || defined(SWIGCSHARP)
/* An async job keeps its Progress and Preview objects reachable while it runs: the host's own
 * generate_async (java.i, csharp.i) wraps this one. */
%rename(generate_async_with) bioesp_host::Model::generate_async(const Options&, Progress*, Preview*);
%ignore bioesp_host::Model::generate_async(const Options&, Progress*);
#endif
#if defined(SWIGJAVA)
%include "java/java.i"  /* class typemaps: before the classes */
#elif defined(SWIGCSHARP)
%include "csharp/csharp.i"
#elif defined(SWIGJAVASCRIPT)
/* No overloads for Node: SWIG's dispatcher would hide the real error behind "Illegal
 * arguments". Progress comes from polling jobs, previews from a PreviewQueue
 * (bindings/node/index.js). */
%ignore bioesp_host::Model::Model(const std::string&);
%ignore bioesp_host::Model::generate(const Options&, Progress*);
%ignore bioesp_host::Model::generate(const Options&, Progress*, Preview*);
%ignore bioesp_host::Model::generate_async(const Options&);
%ignore bioesp_host::Model::generate_async(const Options&, Progress*);
%ignore bioesp_host::Image::save(const std::string&) const;
%ignore bioesp_host::Progress;
%ignore bioesp_host::TrainProgress;
#endif

%include "bioesp.hpp"

#if defined(SWIGPYTHON)
%include "python/python.i"  /* Python code on top of the classes */
#endif
