using System.Security.Cryptography;

namespace Matrix.Homeserver.Media;

public static class MediaIds
{
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    /// <summary>32 random characters of 62: about 190 bits, so media IDs cannot be guessed.</summary>
    public static string NewMediaId() => RandomNumberGenerator.GetString(Alphabet, 32);

    /// <summary>Where one stored object lives: random, fanned out over two directory levels, never derived from input.</summary>
    public static string NewStorageKey(string kind)
    {
        var name = RandomNumberGenerator.GetString(Alphabet, 28);
        return $"{kind}/{name[..2]}/{name[2..4]}/{name[4..]}";
    }

    /// <summary>The spec's rule against path traversal: media IDs are only <c>A-Za-z0-9_-</c>.</summary>
    public static bool IsValidMediaId(string mediaId) =>
        mediaId.Length is > 0 and <= 255 && mediaId.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-');
}
