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

/* An async job keeps its Progress and Preview objects reachable while it runs (the native side
 * calls them through delegates they own). */
%csmethodmodifiers bioesp_host::Model::generate_async(const Options&, Progress*, Preview*) "private";
%typemap(cscode) bioesp_host::Model %{
  /// <summary>Progress calls arrive on the job's worker thread.</summary>
  public Job generate_async(Options options, Progress progress) {
    return generate_async(options, progress, null);
  }
  /// <summary>Progress and preview calls arrive on the job's worker thread.</summary>
  public Job generate_async(Options options, Progress progress, Preview preview) {
    Job job = generate_async_with(options, progress, preview);
    job.callbacks = new object[] {progress, preview};
    return job;
  }
%}
%typemap(cscode) bioesp_host::Job %{
  internal object[] callbacks;
%}
