/* Java: the JNI library loads itself (Processing puts library/<platform>/ on java.library.path);
 * Model and Job are AutoCloseable; Images iterate. Progress callbacks of async jobs arrive on the
 * job's worker thread. */
%pragma(java) jniclasscode=%{
  static {
    System.loadLibrary("bioesp_java");
  }
%}
%typemap(javainterfaces) bioesp_host::Model "AutoCloseable"
%typemap(javainterfaces) bioesp_host::Job "AutoCloseable"
%typemap(javaimports) bioesp_host::Images "import java.util.Iterator;\nimport java.util.NoSuchElementException;"
%typemap(javainterfaces) bioesp_host::Images "Iterable<Image>"
%typemap(javacode) bioesp_host::Images %{
  public Iterator<Image> iterator() {
    return new Iterator<Image>() {
      private long next = 0;
      public boolean hasNext() { return next < size(); }
      public Image next() {
        if (!hasNext()) throw new NoSuchElementException();
        return get(next++);
      }
    };
  }
%}
%javamethodmodifiers bioesp_host::Model::generate_async(const Options&, Progress*, Preview*) "private";
%typemap(javacode) bioesp_host::Model %{
  /** Progress calls arrive on the job's worker thread. */
  public Job generate_async(Options options, Progress progress) {
    return generate_async(options, progress, null);
  }
  /** Progress and preview calls arrive on the job's worker thread. */
  public Job generate_async(Options options, Progress progress, Preview preview) {
    Job job = generate_async_with(options, progress, preview);
    job.hold(new Object[] {progress, preview});
    return job;
  }
%}
/* A job's callbacks are held by a static set, not by the Job: a Job dropped while it runs is
 * finalized together with whatever only it reaches, in no set order, and a Preview finalized
 * first would free the C++ director under the worker. The set lets them go once the native job
 * is freed (close(), delete() or the finalizer). */
%rename(free_job) bioesp_host::Job::close;
%javamethodmodifiers bioesp_host::Job::close "private";
%typemap(javadestruct, methodname="delete", methodmodifiers="public synchronized", parameters="") bioesp_host::Job {
    if (swigCPtr != 0) {
      if (swigCMemOwn) {
        swigCMemOwn = false;
        $jnicall;
      }
      swigCPtr = 0;
    }
    release();
  }
%typemap(javacode) bioesp_host::Job %{
  private static final java.util.Set<Object[]> running = java.util.concurrent.ConcurrentHashMap.newKeySet();
  private Object[] callbacks;

  void hold(Object[] callbacks) {
    this.callbacks = callbacks;
    running.add(callbacks);
  }

  private synchronized void release() {
    if (callbacks != null) running.remove(callbacks);
    callbacks = null;
  }

  /** Cancels if still running, waits, frees. Also done by delete() and the finalizer. */
  public void close() {
    free_job();
    release();
  }
%}
