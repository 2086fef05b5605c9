package bioesp;

/** A bioesp call failed; the message is bioesp_last_error()'s, prefixed with the status. */
public class BioespException extends RuntimeException {
  public BioespException(String message) {
    super(message);
  }
}
