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
    job.callbacks = new Object[] {progress, preview};
    return job;
  }
%}
%typemap(javacode) bioesp_host::Job %{
  Object[] callbacks;
%}
