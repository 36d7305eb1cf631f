namespace Matrix.Homeserver.Observability;

/// <summary>
/// What log entries written while serving a request say about it: its ID, and the user once authenticated. Flows
/// with the request's async calls, so any logger on the way picks it up without being handed it.
/// </summary>
public sealed class RequestLogContext(string requestId)
{
    private static readonly AsyncLocal<RequestLogContext?> Flowing = new();

    public static RequestLogContext? Current => Flowing.Value;

    public string RequestId => requestId;
    public string? UserId { get; set; }

    /// <summary>Starts the context of a request (for the rest of the calling async flow).</summary>
    public static RequestLogContext Begin(string requestId) => Flowing.Value = new RequestLogContext(requestId);
}
