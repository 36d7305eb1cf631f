namespace Matrix.Federation.Json;

/// <summary>JSON that cannot be parsed or encoded under the spec's canonical JSON rules.</summary>
public sealed class CanonicalJsonException(string message) : Exception(message);
