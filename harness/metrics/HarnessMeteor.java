import edu.cmu.meteor.scorer.MeteorConfiguration;
import edu.cmu.meteor.scorer.MeteorScorer;
import edu.cmu.meteor.scorer.MeteorStats;
import edu.cmu.meteor.util.Normalizer;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.BufferedReader;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.PrintStream;
import java.io.Writer;
import java.lang.reflect.Field;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.StringTokenizer;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;

/**
 * Meteor's -stdio protocol (SCORE and EVAL lines), scored in batches.
 *
 * index TABLE.gz OUT: write the paraphrase table as a word list and id entries (read as Meteor reads it).
 * score THREADS INDEX|- ARGS...: Meteor with its own ARGS; SCORE lines are collected until a FLUSH line,
 * then scored on THREADS threads and answered in input order (the same lines -stdio prints). Per batch:
 * each distinct text is normalized once (the scorer's own Normalizer call and lowercasing, done before
 * alignment instead of inside it), and the scorer is built with only the paraphrase entries whose words
 * all occur in the batch's normalized tokens: an entry with any other word can match nothing (Meteor
 * matches a paraphrase only when every word of both sides is found in the two sentences).
 */
public final class HarnessMeteor {
    private static final int MAGIC = 0x484d5031;

    public static void main(String[] args) throws Exception {
        if (args[0].equals("index")) {
            index(args[1], args[2]);
        } else {
            score(Math.max(1, Integer.parseInt(args[1])), args[2], Arrays.copyOfRange(args, 3, args.length));
        }
    }

    // ---- the paraphrase index -------------------------------------------------------------------

    private static void index(String table, String out) throws Exception {
        HashMap<String, Integer> ids = new HashMap<>();
        ArrayList<String> words = new ArrayList<>();
        File entriesFile = new File(out + ".entries");
        long entries = 0;
        try (BufferedReader in = new BufferedReader(new InputStreamReader(
                new GZIPInputStream(new FileInputStream(table), 1 << 16), StandardCharsets.UTF_8), 1 << 16);
             DataOutputStream ent = new DataOutputStream(new BufferedOutputStream(new FileOutputStream(entriesFile), 1 << 16))) {
            // the loop of Meteor's ParaphraseTransducer: a probability line, then the two phrases
            while (in.readLine() != null) {
                for (int side = 0; side < 2; side++) {
                    StringTokenizer tok = new StringTokenizer(in.readLine());
                    ent.writeInt(tok.countTokens());
                    while (tok.hasMoreTokens()) {
                        String w = tok.nextToken();
                        Integer id = ids.get(w);
                        if (id == null) {
                            id = words.size();
                            ids.put(w, id);
                            words.add(w);
                        }
                        ent.writeInt(id);
                    }
                }
                entries++;
            }
        }
        // ids and lengths as 2-byte chars when every id fits (the English table has ~43k words), else 4-byte ints
        int width = words.size() <= 0xFFFF ? 2 : 4;
        try (DataOutputStream o = new DataOutputStream(new BufferedOutputStream(new FileOutputStream(out), 1 << 16));
             DataInputStream ent = new DataInputStream(new BufferedInputStream(new FileInputStream(entriesFile), 1 << 16))) {
            o.writeInt(MAGIC);
            o.writeInt(width);
            o.writeInt(words.size());
            long ints = entriesFile.length() / 4;
            o.writeLong(ints);
            for (String w : words) {
                byte[] b = w.getBytes(StandardCharsets.UTF_8);
                o.writeInt(b.length);
                o.write(b);
            }
            for (long i = 0; i < ints; i++) {
                int v = ent.readInt();
                if (width == 2) o.writeChar(v); else o.writeInt(v);
            }
        }
        if (!entriesFile.delete()) throw new IllegalStateException("could not delete " + entriesFile);
    }

    private static final class Index {
        final String[] words;
        final HashMap<String, Integer> ids;
        final java.nio.CharBuffer narrow;  // one of the two, by the index's width
        final java.nio.IntBuffer wide;
        final int size;

        Index(String path) throws Exception {
            try (FileChannel ch = FileChannel.open(new File(path).toPath(), StandardOpenOption.READ);
                 DataInputStream in = new DataInputStream(new BufferedInputStream(new FileInputStream(path), 1 << 16))) {
                if (in.readInt() != MAGIC) throw new IllegalStateException(path + ": not a paraphrase index");
                int width = in.readInt();
                int n = in.readInt();
                long count = in.readLong();
                long offset = 4 + 4 + 4 + 8;
                words = new String[n];
                ids = new HashMap<>(2 * n);
                for (int i = 0; i < n; i++) {
                    byte[] b = new byte[in.readInt()];
                    in.readFully(b);
                    words[i] = new String(b, StandardCharsets.UTF_8);
                    ids.put(words[i], i);
                    offset += 4 + b.length;
                }
                java.nio.MappedByteBuffer map = ch.map(FileChannel.MapMode.READ_ONLY, offset, count * width);
                narrow = width == 2 ? map.asCharBuffer() : null;
                wide = width == 2 ? null : map.asIntBuffer();
                size = (int) count;
            }
        }

        private int get(int i) {
            return narrow != null ? narrow.get(i) : wide.get(i);
        }

        /** The entries whose words are all in vocab, in table order, written as Meteor's table format. */
        void filter(HashSet<String> vocab, File out) throws Exception {
            boolean[] allowed = new boolean[words.length];
            for (String w : vocab) {
                Integer id = ids.get(w);
                if (id != null) allowed[id] = true;
            }
            int n = size;
            StringBuilder line = new StringBuilder();
            try (Writer w = new OutputStreamWriter(new GZIPOutputStream(new FileOutputStream(out), 1 << 16) {
                { def.setLevel(1); }
            }, StandardCharsets.UTF_8)) {
                int pos = 0;
                while (pos < n) {
                    int start = pos;
                    boolean ok = true;
                    for (int side = 0; side < 2; side++) {
                        int len = get(pos++);
                        for (int i = 0; i < len; i++) ok &= allowed[get(pos + i)];
                        pos += len;
                    }
                    if (!ok) continue;
                    line.setLength(0);
                    line.append("0\n");
                    int p = start;
                    for (int side = 0; side < 2; side++) {
                        int len = get(p++);
                        for (int i = 0; i < len; i++) {
                            if (i > 0) line.append(' ');
                            line.append(words[get(p + i)]);
                        }
                        p += len;
                        line.append('\n');
                    }
                    w.write(line.toString());
                }
            }
        }
    }

    // ---- scoring --------------------------------------------------------------------------------

    private static final class Job {
        final String hyp;
        final ArrayList<String> refs;
        final String error;

        Job(String hyp, ArrayList<String> refs, String error) {
            this.hyp = hyp;
            this.refs = refs;
            this.error = error;
        }
    }

    private static Field field(String name) throws Exception {
        Field f = MeteorScorer.class.getDeclaredField(name);
        f.setAccessible(true);
        return f;
    }

    private static void score(int threads, String indexPath, String[] meteorArgs) throws Exception {
        MeteorConfiguration config = new MeteorConfiguration(Meteor.createPropertiesFromArgs(meteorArgs, 2));
        File tmpDir = Files.createTempDirectory("harness-meteor-").toFile();
        Index index = null;
        if (!indexPath.equals("-")) {
            index = new Index(indexPath);
            File empty = new File(tmpDir, "empty.gz");
            index.filter(new HashSet<>(), empty);
            config.setParaFileURL(empty.toURI().toURL());
        }
        // with an index: no paraphrases (the batches build their own); without: the whole table
        MeteorScorer base = new MeteorScorer(config);
        // one segment on this thread first: lazily loaded statics (the normalizer's tables) are set before any worker runs
        base.getMeteorStats("warm up .", new ArrayList<>(Arrays.asList("warm up .")));
        Field normalize = field("normalize"), lowerCase = field("lowerCase");
        boolean norm = normalize.getBoolean(base), lower = lowerCase.getBoolean(base);
        int lang = field("langID").getInt(base);
        boolean keep = field("keepPunctuation").getBoolean(base);
        ExecutorService pool = Executors.newFixedThreadPool(threads, r -> {
            Thread t = new Thread(r);
            t.setDaemon(true);
            return t;
        });
        PrintStream out = new PrintStream(new FileOutputStream(java.io.FileDescriptor.out), false, "UTF-8");
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
        ArrayList<Job> batch = new ArrayList<>();
        int batches = 0;
        String line;
        while ((line = in.readLine()) != null) {
            if (line.startsWith("SCORE") || line.startsWith("score")) {
                String[] parts = line.split("\\|\\|\\|");
                if (parts.length < 3) {
                    batch.add(new Job(null, null, "Error: specify hypothesis and at least one reference"));
                    continue;
                }
                ArrayList<String> refs = new ArrayList<>();
                for (int i = 1; i < parts.length - 1; i++) refs.add(parts[i].trim());
                batch.add(new Job(parts[parts.length - 1].trim(), refs, null));
            } else if (line.equals("FLUSH")) {
                runBatch(batch, base, config, index, new File(tmpDir, "batch-" + (batches++) + ".gz"), pool,
                         norm, lower, lang, keep, normalize, lowerCase, out);
                batch.clear();
            } else if (line.startsWith("EVAL") || line.startsWith("eval")) {
                eval(base, line, pool, threads, out);
                out.flush();
            }
        }
        if (!batch.isEmpty()) {
            runBatch(batch, base, config, index, new File(tmpDir, "batch-" + batches + ".gz"), pool, norm, lower,
                     lang, keep, normalize, lowerCase, out);
        }
        out.flush();
        pool.shutdownNow();
        for (File f : tmpDir.listFiles()) f.delete();
        tmpDir.delete();
    }

    private static void runBatch(ArrayList<Job> batch, MeteorScorer base, MeteorConfiguration config, Index index,
                                 File table, ExecutorService pool, boolean norm, boolean lower, int lang,
                                 boolean keep, Field normalize, Field lowerCase, PrintStream out) throws Exception {
        // each distinct text prepared once, exactly as getMeteorStats(String, ArrayList) prepares it
        ConcurrentHashMap<String, String> prepared = new ConcurrentHashMap<>();
        for (Job job : batch) {
            if (job.error != null) continue;
            prepared.put(job.hyp, job.hyp);
            for (String r : job.refs) prepared.put(r, r);
        }
        List<Future<?>> work = new ArrayList<>();
        for (String text : prepared.keySet()) {
            work.add(pool.submit(() -> {
                String s = norm ? Normalizer.normalizeLine(text, lang, keep) : text;
                prepared.put(text, lower ? s.toLowerCase() : s);
            }));
        }
        for (Future<?> f : work) f.get();
        MeteorScorer scorer = base;
        if (index != null) {
            // the tokens the aligner will see (Alignment splits with a StringTokenizer)
            HashSet<String> vocab = new HashSet<>();
            for (String s : prepared.values()) {
                StringTokenizer tok = new StringTokenizer(s);
                while (tok.hasMoreTokens()) vocab.add(tok.nextToken());
            }
            index.filter(vocab, table);
            config.setParaFileURL(table.toURI().toURL());
            scorer = new MeteorScorer(config);
            table.delete();
        }
        final MeteorScorer shared = scorer;
        ThreadLocal<MeteorScorer> local = ThreadLocal.withInitial(() -> {
            MeteorScorer s = new MeteorScorer(shared);
            try {
                normalize.setBoolean(s, false);  // the texts come prepared
                lowerCase.setBoolean(s, false);
            } catch (IllegalAccessException e) {
                throw new IllegalStateException(e);
            }
            return s;
        });
        List<Future<MeteorStats>> results = new ArrayList<>();
        for (Job job : batch) {
            if (job.error != null) {
                results.add(null);
                continue;
            }
            String hyp = prepared.get(job.hyp);
            ArrayList<String> refs = new ArrayList<>();
            for (String r : job.refs) refs.add(prepared.get(r));
            results.add(pool.submit(() -> local.get().getMeteorStats(hyp, refs)));
        }
        for (int i = 0; i < batch.size(); i++) {
            Future<MeteorStats> f = results.get(i);
            out.println(f == null ? batch.get(i).error : f.get().toString());
        }
        out.flush();
    }

    /** EVAL: each distinct segment's statistics parsed and scored once, on the pool; the total summed in order. */
    private static void eval(MeteorScorer scorer, String line, ExecutorService pool, int threads, PrintStream out)
            throws Exception {
        String[] parts = line.split("\\|\\|\\|");
        if (parts.length < 2) {
            out.println("Error: specify Meteor stats");
            return;
        }
        HashMap<String, MeteorStats> distinct = new HashMap<>();
        for (int i = 1; i < parts.length; i++) distinct.putIfAbsent(parts[i].trim(), null);
        String[] keys = distinct.keySet().toArray(new String[0]);
        MeteorStats[] parsed = new MeteorStats[keys.length];
        int chunk = Math.max(1, (keys.length + 4 * threads - 1) / (4 * threads));
        List<Future<?>> work = new ArrayList<>();
        for (int start = 0; start < keys.length; start += chunk) {
            final int from = start, to = Math.min(keys.length, start + chunk);
            work.add(pool.submit(() -> {
                for (int i = from; i < to; i++) {
                    parsed[i] = new MeteorStats(keys[i]);
                    scorer.computeMetrics(parsed[i]);
                }
            }));
        }
        for (Future<?> f : work) f.get();
        for (int i = 0; i < keys.length; i++) distinct.put(keys[i], parsed[i]);
        MeteorStats total = new MeteorStats();
        StringBuilder text = new StringBuilder();
        for (int i = 1; i < parts.length; i++) {
            MeteorStats stats = distinct.get(parts[i].trim());
            text.append(stats.score).append('\n');
            total.addStats(stats);
        }
        scorer.computeMetrics(total);
        text.append(total.score).append('\n');
        out.print(text);
    }
}
