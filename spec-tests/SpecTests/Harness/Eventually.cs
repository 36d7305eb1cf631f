namespace Matrix.SpecTests.Harness;

public static class Eventually
{
    /// <summary>Polls until the condition holds; the generous limit only keeps a broken server from hanging the suite.</summary>
    public static Task HoldsAsync(Func<Task<bool>> condition, string what) => HoldsAsync(condition, () => what);

    /// <param name="what">what was awaited, read only on failure (e.g. to show the server's output then)</param>
    public static async Task HoldsAsync(Func<Task<bool>> condition, Func<string> what)
    {
        var limit = DateTime.UtcNow.AddSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < limit, $"never happened: {what()}");
            await Task.Delay(50);
        }
    }
}
