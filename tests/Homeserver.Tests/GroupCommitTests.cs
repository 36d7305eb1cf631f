using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Tests;

public sealed class GroupCommitTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    /// <summary>A group commit whose batch holding item 0 waits for <c>release</c> (so the items after it gather), recording every batch.</summary>
    private static (GroupCommit<int> Commit, List<IReadOnlyList<int>> Batches, TaskCompletionSource FirstWriteStarted, TaskCompletionSource Release)
        HeldAtFirstBatch(int maxBatch = 500)
    {
        var batches = new List<IReadOnlyList<int>>();
        var (started, release) = (new TaskCompletionSource(), new TaskCompletionSource());
        var commit = new GroupCommit<int>(async items =>
        {
            lock (batches)
                batches.Add(items);
            if (items.Contains(0))
            {
                started.SetResult();
                await release.Task;
            }
        }, maxBatch);
        return (commit, batches, started, release);
    }

    [Fact]
    public async Task Items_submitted_while_a_batch_is_written_go_together_in_the_next_one()
    {
        var (commit, batches, firstWriteStarted, releaseFirstWrite) = HeldAtFirstBatch();

        var first = commit.SubmitAsync(0, CancellationToken.None);
        await firstWriteStarted.Task.WaitAsync(Generous);
        var waiting = Enumerable.Range(1, 50).Select(i => commit.SubmitAsync(i, CancellationToken.None)).ToList();
        Assert.False(first.IsCompleted);
        Assert.All(waiting, w => Assert.False(w.IsCompleted));

        releaseFirstWrite.SetResult();
        await Task.WhenAll(waiting.Append(first)).WaitAsync(Generous);
        Assert.Equal(2, batches.Count);
        Assert.Equal([0], batches[0]);
        Assert.Equal(Enumerable.Range(1, 50), batches[1]);
    }

    [Fact]
    public async Task A_failed_batch_fails_each_of_its_callers_and_the_next_batch_is_still_written()
    {
        var commit = new GroupCommit<string>(items =>
            items.Contains("bad") ? Task.FromException(new InvalidOperationException("write failed")) : Task.CompletedTask);

        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => commit.SubmitAsync("bad", CancellationToken.None).WaitAsync(Generous));
        Assert.Equal("write failed", failure.Message);
        await commit.SubmitAsync("good", CancellationToken.None).WaitAsync(Generous);
    }

    [Fact]
    public async Task A_batch_holds_at_most_the_maximum_and_the_rest_follow_in_order()
    {
        var (commit, batches, firstWriteStarted, releaseFirstWrite) = HeldAtFirstBatch(maxBatch: 4);

        var first = commit.SubmitAsync(0, CancellationToken.None);
        await firstWriteStarted.Task.WaitAsync(Generous);
        var rest = Enumerable.Range(1, 10).Select(i => commit.SubmitAsync(i, CancellationToken.None)).ToList();
        releaseFirstWrite.SetResult();
        await Task.WhenAll(rest.Append(first)).WaitAsync(Generous);

        Assert.Equal([[0], [1, 2, 3, 4], [5, 6, 7, 8], [9, 10]], batches.Select(b => b.ToArray()));
    }
}
