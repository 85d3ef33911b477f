using System.Text;

namespace HelpBuilder;

/// <summary>Writes an about_ topic as the plain text Get-Help shows (headings in capitals, body indented).</summary>
internal static class AboutTopicWriter
{
    private const int Width = 80;

    public static string Write(AboutTopic topic)
    {
        var text = new StringBuilder();
        text.Append("TOPIC\n    ").Append(topic.Name).Append("\n\n");
        foreach (var (heading, level, blocks) in topic.Sections)
        {
            var headingIndent = level <= 2 ? "" : "  ";
            text.Append(headingIndent).Append(level <= 2 ? heading.ToUpperInvariant() : heading).Append('\n');
            foreach (var block in blocks)
            {
                if (block.IsCode)
                {
                    foreach (var line in block.Text.Split('\n')) text.Append("        ").Append(line).Append('\n');
                }
                else
                {
                    var bullet = block.Text.StartsWith("- ", StringComparison.Ordinal);
                    Wrap(text, block.Text, bullet ? "    " : "    ", bullet ? "      " : "    ");
                }
                text.Append('\n');
            }
            if (blocks.Count == 0) text.Append('\n');
        }
        return text.ToString();
    }

    private static void Wrap(StringBuilder text, string paragraph, string firstIndent, string nextIndent)
    {
        var line = new StringBuilder(firstIndent);
        var lineHasWord = false;
        foreach (var word in paragraph.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (lineHasWord && line.Length + 1 + word.Length > Width)
            {
                text.Append(line).Append('\n');
                line.Clear().Append(nextIndent);
                lineHasWord = false;
            }
            if (lineHasWord) line.Append(' ');
            line.Append(word);
            lineHasWord = true;
        }
        text.Append(line).Append('\n');
    }
}
