// Helpers of scripts/edit-grid.sh, run as a single-file program (java scripts/EditGrid.java):
//   noisy IN.png OUT.png SIGMA SEED   the image in [-1, 1] plus SIGMA * N(0, 1), back to 8 bits
//   tile OUT.png SCALE ROW...         each ROW a comma-separated list of PNGs ("-" for an empty
//                                     cell), scaled by SCALE (nearest), 2-pixel white gaps
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.File;
import java.util.Random;
import javax.imageio.ImageIO;

public class EditGrid {
  public static void main(String[] args) throws Exception {
    if (args.length >= 5 && args[0].equals("noisy")) {
      noisy(args[1], args[2], Double.parseDouble(args[3]), Long.parseLong(args[4]));
    } else if (args.length >= 4 && args[0].equals("tile")) {
      String[] rows = java.util.Arrays.copyOfRange(args, 3, args.length);
      tile(args[1], Integer.parseInt(args[2]), rows);
    } else {
      System.err.println("usage: noisy IN OUT SIGMA SEED | tile OUT SCALE ROW...");
      System.exit(2);
    }
  }

  static void noisy(String in, String out, double sigma, long seed) throws Exception {
    BufferedImage image = ImageIO.read(new File(in));
    BufferedImage noisy = new BufferedImage(image.getWidth(), image.getHeight(),
        BufferedImage.TYPE_3BYTE_BGR);
    Random random = new Random(seed);
    int[] px = new int[3];
    for (int y = 0; y < image.getHeight(); y++) {
      for (int x = 0; x < image.getWidth(); x++) {
        image.getRaster().getPixel(x, y, px);
        for (int c = 0; c < 3; c++) {
          double v = px[c] / 127.5 - 1 + sigma * random.nextGaussian();
          px[c] = (int) Math.round(Math.min(1, Math.max(-1, v)) * 127.5 + 127.5);
        }
        noisy.getRaster().setPixel(x, y, px);
      }
    }
    ImageIO.write(noisy, "png", new File(out));
  }

  static void tile(String out, int scale, String[] rows) throws Exception {
    int gap = 2;
    int cols = 0;
    int cell = 0;
    BufferedImage[][] cells = new BufferedImage[rows.length][];
    for (int r = 0; r < rows.length; r++) {
      String[] files = rows[r].split(",");
      cells[r] = new BufferedImage[files.length];
      cols = Math.max(cols, files.length);
      for (int c = 0; c < files.length; c++) {
        if (!files[c].equals("-")) {
          cells[r][c] = ImageIO.read(new File(files[c]));
          cell = Math.max(cell, cells[r][c].getWidth());
        }
      }
    }
    int side = cell * scale;
    BufferedImage grid = new BufferedImage(cols * (side + gap) + gap,
        rows.length * (side + gap) + gap, BufferedImage.TYPE_3BYTE_BGR);
    Graphics2D g = grid.createGraphics();
    g.setColor(Color.WHITE);
    g.fillRect(0, 0, grid.getWidth(), grid.getHeight());
    g.setRenderingHint(RenderingHints.KEY_INTERPOLATION,
        RenderingHints.VALUE_INTERPOLATION_NEAREST_NEIGHBOR);
    for (int r = 0; r < rows.length; r++) {
      for (int c = 0; c < cells[r].length; c++) {
        if (cells[r][c] != null) {
          g.drawImage(cells[r][c], gap + c * (side + gap), gap + r * (side + gap), side, side,
              null);
        }
      }
    }
    g.dispose();
    ImageIO.write(grid, "png", new File(out));
  }
}
