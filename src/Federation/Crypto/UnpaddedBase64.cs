namespace Matrix.Federation.Crypto;

/// <summary>Unpadded base64 as the spec's appendix defines it, standard and URL-safe alphabets.</summary>
public static class UnpaddedBase64
{
    public static string Encode(ReadOnlySpan<byte> data) => Convert.ToBase64String(data).TrimEnd('=');

    public static string EncodeUrlSafe(ReadOnlySpan<byte> data) =>
        Convert.ToBase64String(data).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>Decodes standard or URL-safe base64, padded or not; false when the text is not base64.</summary>
    public static bool TryDecode(string text, out byte[] data)
    {
        data = [];
        var standard = text.TrimEnd('=').Replace('-', '+').Replace('_', '/');
        if (standard.Length % 4 == 1)
            return false;
        standard = standard.PadRight(standard.Length + (4 - standard.Length % 4) % 4, '=');
        var buffer = new byte[standard.Length / 4 * 3];
        if (!Convert.TryFromBase64String(standard, buffer, out var written))
            return false;
        data = buffer[..written];
        return true;
    }
}
