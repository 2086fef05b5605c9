/* C#: class typemaps (before the classes). Mono and .NET would unwind an exception thrown in a
 * C# callback through the native frames under it (bioesp's, holding its locks), so the C# side
 * of every callback catches it and hands its type and message to the C++ side of the same
 * upcall, which throws it there: the call ends (a job fails) and the caller gets an
 * ApplicationException "exception in a C# callback: TYPE: MESSAGE". Every director method
 * returns bool. */
%{
static thread_local std::string csharp_callback_error;

extern "C" SWIGEXPORT void SWIGSTDCALL bioesp_host_callback_failed(const char* what) {
  csharp_callback_error = what && *what ? what : "an exception";
}

static void raise_csharp_callback_error() {
  if (csharp_callback_error.empty()) return;
  std::string what = "exception in a C# callback: " + csharp_callback_error;
  csharp_callback_error.clear();
  throw std::runtime_error(what);
}
%}
%typemap(directorout) bool %{
  $result = $input ? true : false;
  raise_csharp_callback_error();
%}
%typemap(csdirectorout) bool "$imclassname.Guard(() => $cscall)"
%pragma(csharp) imclasscode=%{
  [global::System.Runtime.InteropServices.DllImport("$dllimport", EntryPoint="bioesp_host_callback_failed")]
  static extern void bioesp_callback_failed(string what);

  public static bool Guard(global::System.Func<bool> callback) {
    try {
      return callback();
    } catch (global::System.Exception e) {
      bioesp_callback_failed(e.GetType().FullName + ": " + e.Message);
      return false;
    }
  }
%}

/* A job's callbacks are held by a static table, not by the Job: a Job dropped while it runs is
 * finalized together with whatever only it reaches, in no set order, and a Preview finalized
 * first would free the C++ director (and the delegates it calls) under the worker. The table
 * lets them go once the native job is freed (close() or Dispose, also from the finalizer). */
%csmethodmodifiers bioesp_host::Model::generate_async(const Options&, Progress*, Preview*) "private";
%typemap(cscode) bioesp_host::Model %{
  /// <summary>Progress calls arrive on the job's worker thread.</summary>
  public Job generate_async(Options options, Progress progress) {
    return generate_async(options, progress, null);
  }
  /// <summary>Progress and preview calls arrive on the job's worker thread.</summary>
  public Job generate_async(Options options, Progress progress, Preview preview) {
    Job job = generate_async_with(options, progress, preview);
    job.Hold(new object[] {progress, preview});
    return job;
  }
%}
%rename(free_job) bioesp_host::Job::close;
%csmethodmodifiers bioesp_host::Job::close "private";
%typemap(csdisposing, methodname="Dispose", methodmodifiers="protected", parameters="bool disposing") bioesp_host::Job {
    lock(this) {
      if (swigCPtr.Handle != global::System.IntPtr.Zero) {
        if (swigCMemOwn) {
          swigCMemOwn = false;
          $imcall;
        }
        swigCPtr = new global::System.Runtime.InteropServices.HandleRef(null, global::System.IntPtr.Zero);
      }
      Release();
    }
  }
%typemap(cscode) bioesp_host::Job %{
  static readonly global::System.Collections.Concurrent.ConcurrentDictionary<object[], bool> running =
      new global::System.Collections.Concurrent.ConcurrentDictionary<object[], bool>();
  object[] callbacks;

  internal void Hold(object[] callbacks) {
    this.callbacks = callbacks;
    running[callbacks] = true;
  }

  void Release() {
    lock (this) {
      bool unused;
      if (callbacks != null) running.TryRemove(callbacks, out unused);
      callbacks = null;
    }
  }

  /// <summary>Cancels if still running, waits, frees. Also done by Dispose and the finalizer.</summary>
  public void close() {
    free_job();
    Release();
  }
%}
