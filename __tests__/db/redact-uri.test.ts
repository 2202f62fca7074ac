import { redactUri } from '../../db/connect';

test('database URIs are logged without their credentials', () => {
  expect(redactUri('mongodb+srv://user:s3cret@cluster0.example.net/rerum?retryWrites=true')).toBe(
    'mongodb+srv://***@cluster0.example.net/rerum?retryWrites=true',
  );
  expect(redactUri('mongodb://user:pa/ss@h1:27017,h2:27017/?replicaSet=rs')).toBe('mongodb://***@h1:27017,h2:27017/?replicaSet=rs');
  expect(redactUri('mongodb://127.0.0.1:27027/?directConnection=true')).toBe('mongodb://127.0.0.1:27027/?directConnection=true');
});
