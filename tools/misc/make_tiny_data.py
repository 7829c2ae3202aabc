"""Write the tiny generated COCO-format dataset (train + val) used by smoke configs."""
import argparse

from mmmimic.testing import make_tiny_coco


def parse_args():
    parser = argparse.ArgumentParser(description='Generate the tiny COCO-format dataset')
    parser.add_argument('out_dir', nargs='?', default='data/tiny_coco', help='output folder')
    parser.add_argument('--num-train', type=int, default=16)
    parser.add_argument('--num-val', type=int, default=6)
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def main():
    args = parse_args()
    for split, num, seed in (('train', args.num_train, args.seed),
                             ('val', args.num_val, args.seed + 1)):
        info = make_tiny_coco(args.out_dir, num_images=num, seed=seed, split=split)
        print(f'{split}: {num} images -> {info["data_root"]}/{info["ann_file"]}')


if __name__ == '__main__':
    main()
